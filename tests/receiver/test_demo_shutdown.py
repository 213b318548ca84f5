"""`otel-audit demo` stopped with SIGTERM drains its journal into the store (issue 20: it used to
die with the default action, and the next run replayed), and keeps its spool under its data."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from conftest import REPO

from receiver.journal.journal import Journal


def test_demo_sigterm_drains_the_journal_and_spools_under_its_data(tmp_path):
    data = tmp_path / "demo-data"
    home = tmp_path / "home"
    env = {
        "COLUMNS": "200",
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
    }
    args = [
        "demo",
        "--rounds",
        "2",
        "--data",
        str(data),
        "--grpc-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "receiver.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    try:
        deadline = time.monotonic() + 180
        lines: list[str] = []
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Serving the admin API/UI"):
                break
        assert lines and lines[-1].startswith("Serving"), "".join(lines) + proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read()[-2000:]
    journal = Journal(data / "journal")
    try:
        assert journal.open() == []  # nothing left to replay
    finally:
        journal.close()
    assert (data / "spool").is_dir()
    assert not (home / ".local" / "state" / "otel-audit").exists()
    assert "not committed at shutdown" not in proc.stderr.read()
