"""Fixtures for the emitter tests (helpers live in ``emitter_support``)."""

from __future__ import annotations

from emitter_support import captured

__all__ = ["captured"]
