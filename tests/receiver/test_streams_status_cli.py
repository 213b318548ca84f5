"""``otel-audit streams status`` without ``--server``: the config's streams read straight from
the store once ``serve`` has stopped (positions, lag, backlog, the last delivery), and a readable
one-line refusal while ``serve`` holds the store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO, ServeProcess
from stream_support import HttpCollector, send_events, wait_for

FAST = {"poll_seconds": 0.1, "batch_seconds": 0, "retry_initial_seconds": 0.2, "retry_max_seconds": 1}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", "streams", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


@pytest.fixture
def collectors():
    up, down = HttpCollector(), HttpCollector()
    down.down = True
    yield up, down
    up.close()
    down.close()


def test_status_reads_the_store_when_serve_is_not_running(tmp_path, collectors):
    up, down = collectors
    streams = [
        {"name": "siem", "kind": "webhook", "url": up.base, "secret": "s", **FAST},
        {
            "name": "away",
            "kind": "webhook",
            "url": down.base,
            "headers": {"x-key": "k"},
            "backlog_limit": 3,
            **FAST,
        },
    ]
    config = tmp_path / "otel-audit.yaml"
    data = tmp_path / "data"
    config.write_text(
        json.dumps({"alerts": {"enabled": False}, "store": f"chdb://{data}", "streams": streams})
    )
    serve = ServeProcess(data, ("--config", str(config))).start()
    try:
        send_events(serve.grpc_endpoint, "acme", 5)
        wait_for(lambda: sum(b.count(b"\n") for b in up.bodies()) >= 5, what="delivery to siem")
        wait_for(lambda: down.refused >= 1, what="a refused delivery")
        locked = cli("status", "--config", str(config))
        assert locked.returncode == 2 and "--server" in locked.stderr, locked.stderr
        assert len(locked.stderr.strip().splitlines()) == 1
    finally:
        serve.stop()
    done = cli("status", "--config", str(config), "--json")
    assert done.returncode == 0, done.stderr
    by_name = {s["name"]: s for s in json.loads(done.stdout)["streams"]}
    siem, away = by_name["siem"], by_name["away"]
    assert siem["lag_events"] == 0 and sum(siem["positions"].values()) > 0
    assert siem["last_delivery_at"] and not siem["backlog_exceeded"]
    assert away["lag_events"] == 5 and away["positions"] == {} and away["last_delivery_at"] is None
    assert away["backlog_exceeded"] and away["lag_seconds"] > 0
    assert siem["config"]["secret"] == "***" and away["config"]["headers"] == {"x-key": "***"}
    assert "delivered_events" not in siem  # a receiver's own counters: only with --server
    table = cli("status", "--config", str(config))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("siem\twebhook\tlag 0 events") and "last delivery 20" in lines[0]
    assert lines[1].startswith("away\twebhook\tlag 5 events") and "BACKLOG OVER LIMIT" in lines[1]


def test_status_without_server_or_config_is_one_readable_line(tmp_path):
    done = cli("status", "--store", f"chdb://{tmp_path / 'data'}")
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "otel-audit streams: error: streams status needs --server URL, or --config FILE (its streams: and store:)"
    )
