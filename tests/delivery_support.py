"""Helpers for the delivery, compliance and fault tests (issue 3), importable from any test
directory (``conftest`` is not: several exist, and the module name is shared)."""

from __future__ import annotations

from pathlib import Path

from receiver.config import load_config
from receiver.server import Receiver

REPO = Path(__file__).resolve().parent.parent


def start_receiver(store: object, **config: object) -> Receiver:
    """An in-process receiver on free loopback ports over ``store``, with config overrides."""
    listen = {"grpc_listen": "127.0.0.1:0", "http_listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0"}
    cfg = load_config(None, **{**listen, **config})
    receiver = Receiver(cfg, store=store)  # type: ignore[arg-type]
    receiver.start()
    return receiver
