"""Helpers for the delivery, compliance and fault tests (issue 3), importable from any test
directory (``conftest`` is not: several exist, and the module name is shared)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from receiver.config import load_config
from receiver.server import Receiver

REPO = Path(__file__).resolve().parent.parent


def start_receiver(store: object, **config: object) -> Receiver:
    """An in-process receiver on free loopback ports over ``store``, with config overrides;
    acknowledges once in the store (``ack="store"``) unless told otherwise."""
    config.setdefault("ack", "store")
    listen = {"grpc_listen": "127.0.0.1:0", "http_listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0"}
    cfg = load_config(None, **{**listen, **config})
    receiver = Receiver(cfg, store=store)  # type: ignore[arg-type]
    receiver.start()
    return receiver


_STORED_IDS = """
import json, sys
from receiver.filters import EventFilter
from receiver.store.chdb_store import ChdbStore
store = ChdbStore(sys.argv[1])
ids = [i for batch in store.iter_batches(EventFilter()) for i in batch.column("id").to_pylist()]
print(json.dumps([str(i) for i in ids]))
"""


def stored_ids(data_dir: Path) -> list[str]:
    """Every stored row's id, duplicates included, read by a process of its own (one chDB path
    per process; the receiver that owned it must be stopped)."""
    out = subprocess.run(
        [sys.executable, "-c", _STORED_IDS, str(data_dir)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return [str(i) for i in json.loads(out.stdout.strip().splitlines()[-1])]


def run_app(endpoint: str, spool_dir: Path, ids_file: Path, count: int, *extra: str) -> subprocess.Popen[str]:
    """tests/delivery_app.py in a process of its own (stdout piped, for its progress lines)."""
    return subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests" / "delivery_app.py"),
            endpoint,
            str(spool_dir),
            str(ids_file),
            str(count),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )


def read_ids(ids_file: Path) -> list[str]:
    return [line for line in ids_file.read_text().splitlines() if line]
