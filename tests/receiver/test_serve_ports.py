"""Issue 13 item 14 / SPEC section 13: ``serve`` on a taken port exits non-zero within 10 s with
one line naming the address, before opening the store, for every listener. The port is held
with SO_REUSEPORT, as a running receiver's gRPC listener held it (so old serves shared it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import REPO, free_port


@pytest.mark.parametrize("listener", ["grpc", "http", "admin", "sql"])
def test_serve_refuses_a_taken_port(tmp_path, listener):
    ports = {name: free_port() for name in ("grpc", "http", "admin", "sql")}
    data = tmp_path / "data"
    config = tmp_path / "otel-audit.yaml"
    config.write_text(
        f"store: chdb://{data}\n"
        "listen:\n"
        f"  grpc: 127.0.0.1:{ports['grpc']}\n"
        f"  http: 127.0.0.1:{ports['http']}\n"
        f"  admin: 127.0.0.1:{ports['admin']}\n"
        "sql_endpoint:\n"
        f"  listen: 127.0.0.1:{ports['sql']}\n"
        "  users: [{user: grafana, password: grafana-password-1, tenants: ['*']}]\n"
        f"archive: {{path: {tmp_path / 'archive'}}}\n"
    )
    address = f"127.0.0.1:{ports[listener]}"
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        blocker.bind(("127.0.0.1", ports[listener]))
        blocker.listen(8)
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "receiver.cli", "serve", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.terminate()
            out, err = proc.communicate(timeout=30)
            pytest.fail(f"serve kept running with {address} taken: {out[-500:]} {err[-500:]}")
    elapsed = time.monotonic() - started
    assert proc.returncode != 0
    assert elapsed < 10, elapsed
    lines = err.strip().splitlines()
    assert len(lines) == 1 and address in lines[0], err
    assert "already in use" in lines[0]
    assert not data.exists(), "the store was opened although serve could not listen"


def test_grpc_listener_never_shares_its_port():
    """Even past the probe (a race with another process), grpcio must not bind with SO_REUSEPORT."""
    from receiver.transport.otlp_grpc import GrpcReceiver

    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(8)
        address = f"127.0.0.1:{blocker.getsockname()[1]}"
        with pytest.raises(OSError, match=address):
            GrpcReceiver(None, address)  # type: ignore[arg-type]
