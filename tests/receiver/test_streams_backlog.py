"""A stream whose destination is away and whose undelivered events exceed ``backlog_limit``
raises a ``stream-backlog`` alert (issue 14's alerts: recorded as ``audit.alert.fired`` in the
waiting tenant, delivered to the stream's ``backlog_destinations``), once per backlog, while
ingest goes on unblocked; the metric and /api/streams show the state."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from conftest import start_receiver
from stream_support import HttpCollector, send_events, wait_for

from receiver.config import ConfigError, load_config
from receiver.store.sql import Statement

ADMIN = "admin-token-backlog-0123456789"
FAST = {"poll_seconds": 0.1, "batch_seconds": 0, "retry_initial_seconds": 0.2, "retry_max_seconds": 0.5}


@pytest.fixture
def hooks():
    siem, ops = HttpCollector(), HttpCollector()
    siem.down = True
    yield siem, ops
    siem.close()
    ops.close()


def fired(store) -> list[dict]:
    sql = (
        f"SELECT toString(tenant_id) AS tenant, attributes FROM {store.database}.audit_events"
        " WHERE event_name = 'audit.alert.fired' ORDER BY received_at"
    )
    return [
        {"tenant": r["tenant"], **dict(r["attributes"])}
        for r in store.query_table(Statement(sql, {})).to_pylist()
    ]


def test_a_stream_over_its_backlog_limit_raises_one_alert_and_never_blocks_ingest(store, hooks):
    siem, ops = hooks
    stream = {
        "name": "siem",
        "kind": "webhook",
        "url": siem.base,
        "tenants": ["acme"],
        "backlog_limit": 3,
        "backlog_destinations": ["ops"],
        **FAST,
    }
    alerts = {
        "enabled": True,
        "default_pack": False,
        "interval_seconds": 1,
        "destinations": [{"name": "ops", "kind": "webhook", "url": ops.base, "secret": "ops-secret"}],
    }
    tokens = [{"token": ADMIN, "role": "admin", "tenants": ["*"], "name": "sam"}]
    receiver = start_receiver(store, streams=[stream], alerts=alerts, admin_tokens=tokens)
    try:
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        send_events(grpc, "acme", 5)
        wait_for(lambda: len(ops.bodies()) >= 1, what="the backlog alert at the ops webhook")
        body = json.loads(ops.bodies()[0])
        assert body["rule"] == "stream-backlog" and body["tenant"] == "acme"
        assert body["group"] == {"stream": "siem"} and body["count"] == 5 and body["severity"] == "high"
        # ingest is never blocked: more events are stored while the stream stays behind
        started = time.monotonic()
        for _ in range(5):
            send_events(grpc, "acme", 20)
        assert time.monotonic() - started < 30
        wait_for(lambda: siem.refused >= 3, what="more refused deliveries")
        admin = f"http://127.0.0.1:{receiver.admin_port}"
        status = httpx.get(f"{admin}/api/streams", headers={"authorization": f"Bearer {ADMIN}"}).json()
        (item,) = status["streams"]
        assert item["backlog_exceeded"] and item["lag_events"] >= 105 and item["failures"] >= 3
        metrics = httpx.get(f"{admin}/metrics", headers={"authorization": f"Bearer {ADMIN}"}).text
        assert 'otel_audit_stream_backlog_exceeded{stream="siem"} 1.0' in metrics
        time.sleep(6)  # past a lag update or two: the same backlog is not alerted again
        assert len(ops.bodies()) == 1
        records = [f for f in fired(store) if f["alert.rule"] == "stream-backlog"]
        assert len(records) == 1 and records[0]["tenant"] == "acme"
        assert json.loads(records[0]["alert.group"]) == {"stream": "siem"}
        # the destination comes back: everything is delivered, the state clears
        siem.down = False
        wait_for(lambda: sum(b.count(b"\n") for b in siem.bodies()) >= 105, what="the backlog delivered")
        wait_for(
            lambda: (
                'otel_audit_stream_backlog_exceeded{stream="siem"} 0.0'
                in httpx.get(f"{admin}/metrics", headers={"authorization": f"Bearer {ADMIN}"}).text
            ),
            what="the backlog state cleared",
        )
    finally:
        receiver.stop_listeners()


def test_backlog_destinations_must_name_alert_destinations():
    stream = {"name": "s", "kind": "webhook", "url": "http://127.0.0.1:9/", "backlog_destinations": ["nope"]}
    with pytest.raises(ConfigError, match="backlog_destinations: unknown alert destination"):
        load_config(None, streams=[stream])
