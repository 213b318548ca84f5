"""Issue 13 item 10: audit data is owner-only (directories 0700, files 0600) whatever the umask:
the store, journal, archive, checkpoints and keys of a real ``serve`` started with umask 022,
and the emitter's spool."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
from conftest import REPO, free_port
from otlp_builders import audit_attrs, export, log_record, request

from otel_audit.spool import DiskSpool
from receiver.integrity.checkpoints import generate_key


def loose_entries(root: Path) -> list[str]:
    """Entries under ``root`` (itself included) that group or others may read, write or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and mode & 0o077:
            found.append(f"{oct(stat.S_IMODE(mode))} {path}")
    return found


def test_serve_creates_owner_only_files_under_umask_022(tmp_path):
    ports = {name: free_port() for name in ("grpc", "http", "admin")}
    data, archive, checkpoints = tmp_path / "data", tmp_path / "archive", tmp_path / "checkpoints"
    config = tmp_path / "otel-audit.yaml"
    config.write_text(
        f"store: chdb://{data}\n"
        "listen:\n"
        f"  grpc: 127.0.0.1:{ports['grpc']}\n"
        f"  http: 127.0.0.1:{ports['http']}\n"
        f"  admin: 127.0.0.1:{ports['admin']}\n"
        f"archive: {{path: {archive}}}\n"
        f"integrity: {{checkpoint_dir: {checkpoints}}}\n"
    )
    # a store left by an older version with world-readable modes is tightened too
    (data / "journal").mkdir(parents=True)
    (data / "journal" / "old.txt").write_text("x")
    os.chmod(data, 0o755)
    os.chmod(data / "journal" / "old.txt", 0o644)
    archive.mkdir(mode=0o755)
    (archive / "tenant=acme").mkdir(mode=0o755)
    proc = subprocess.Popen(
        [sys.executable, "-m", "receiver.cli", "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        preexec_fn=lambda: os.umask(0o022),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{ports['admin']}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        records = [log_record(audit_attrs(enduser__id=f"u{i}")) for i in range(20)]
        export(f"127.0.0.1:{ports['grpc']}", request(records))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert loose_entries(data) == []
    assert proc.returncode == 0
    assert any(checkpoints.rglob("*.note")), "no checkpoint written at shutdown"
    for root in (archive, checkpoints):
        assert root.is_dir()
        assert loose_entries(root) == [], root


def test_keygen_and_spool_are_owner_only_under_umask_022(tmp_path):
    previous = os.umask(0o022)
    try:
        private, _ = generate_key(tmp_path / "keys")
        spool = DiskSpool(tmp_path / "spool")
        assert spool.append(b"personal data")
        spool.close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert loose_entries(tmp_path / "spool") == []
