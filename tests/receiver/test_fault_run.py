"""`make fault` stays runnable: one quick scenario of tests/fault/run.py, end to end (a real
`serve` process, raw OTLP over gRPC, the store read back and verified)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.timeout(300)


def test_the_fault_runner_counts_a_scenario_and_exits_zero_without_loss():
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "fault" / "run.py"),
            "--only",
            "old-and-future-times",
            "--events",
            "100",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=280,
    )
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    (row,) = [line for line in out.stdout.splitlines() if line.startswith("old-and-future-times")]
    sent, acked, stored, lost, dup, verify = row.split()[1:7]
    assert (sent, acked, stored, lost, dup, verify) == ("10", "5", "5", "0", "0", "intact") or (
        # between 23:00 and 24:00 UTC the event whose retention ends at midnight is rejected too
        (sent, acked, stored, lost, dup, verify) == ("10", "4", "4", "0", "0", "intact")
    ), row
    assert "no acknowledged event lost" in out.stdout


def test_the_fault_runner_refuses_an_unknown_scenario():
    out = subprocess.run(
        [sys.executable, str(REPO / "tests" / "fault" / "run.py"), "--only", "nope"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 2 and "unknown scenario" in out.stderr
