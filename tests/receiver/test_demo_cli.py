"""`otel-audit demo` as a new user runs it: receiver, instrumented app, traffic, summary."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO


def test_demo_stores_every_event_it_emits(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "receiver.cli",
            "demo",
            "--exit",
            "--rounds",
            "2",
            "--data",
            str(tmp_path / "demo-data"),
            "--grpc-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=180,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r"Stored audit events: (\d+) new \(emitted (\d+)\)", result.stdout)
    assert match, result.stdout
    stored, emitted = int(match.group(1)), int(match.group(2))
    assert emitted > 20 and stored == emitted
    for event in ("audit.user.login", "audit.document.update", "audit.role.grant", "audit.document.delete"):
        assert event in result.stdout
    assert re.search(r"Admin UI:\s+http://127\.0\.0\.1:\d+/", result.stdout)
