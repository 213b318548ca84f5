"""One module per ``otel-audit`` command. Each has ``add_parser(subparsers)``, which registers
its flags and sets ``run``; adding a command is a new module and one line in COMMANDS."""

from __future__ import annotations

COMMANDS: tuple[str, ...] = (
    "init",
    "serve",
    "query",
    "export",
    "demo",
    "verify",
    "proof",
    "verify_proof",
    "keygen",
    "pubkey",
    "migrate",
    "retention",
    "restore",
    "hold",
    "quarantine",
    "journal_ack",
    "streams",
    "viewer_token",
)
