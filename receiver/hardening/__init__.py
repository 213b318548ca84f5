"""Hardening of the serve process: connection caps and read timeouts, fd limit, port probes, private files."""
