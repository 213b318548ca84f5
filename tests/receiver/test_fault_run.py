"""`make fault` stays runnable: one quick scenario of tests/fault/run.py, end to end (a real
`serve` process, raw OTLP over gRPC, the store read back and verified)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.timeout(300)


def storable(started: dt.datetime, ended: dt.datetime) -> set[str]:
    """How many of the scenario's ten event times the receiver stores: five, and from 23:00 UTC
    three (its retention margin, an hour, then reaches the next day, so the two events 29 days
    old are past a 30-day window too); any of those if the run crossed 23:00 or midnight."""

    def late(t: dt.datetime) -> bool:
        return t.hour == 23

    if started.date() == ended.date() and late(started) == late(ended):
        return {"3"} if late(started) else {"5"}
    return {"3", "4", "5"}


def test_the_scenarios_storable_count_follows_the_clock():
    day = dt.datetime(2026, 12, 4, tzinfo=dt.timezone.utc)
    assert storable(day.replace(hour=10), day.replace(hour=10, minute=1)) == {"5"}
    assert storable(day.replace(hour=23, minute=5), day.replace(hour=23, minute=6)) == {"3"}
    assert storable(day.replace(hour=22, minute=59), day.replace(hour=23, minute=1)) == {"3", "4", "5"}


def test_the_fault_runner_counts_a_scenario_and_exits_zero_without_loss():
    started = dt.datetime.now(dt.timezone.utc)
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
    expected = storable(started, dt.datetime.now(dt.timezone.utc))
    assert sent == "10" and acked in expected and stored == acked, row
    assert (lost, dup, verify) == ("0", "0", "intact"), row
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
