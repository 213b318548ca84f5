"""Automated log review (SPEC section 10) on real OTLP into real chDB, with a real loopback HTTP
server as the webhook: each rule kind firing and not firing at its edge, window boundaries, a
restart in the middle of a window, a failing destination retried, the lease, and the review API."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from conftest import start_receiver
from otlp_builders import audit_attrs, export, log_record, request

from receiver.alerts.config import Alerts
from receiver.alerts.evaluator import Evaluator
from receiver.alerts.metrics import AlertMetrics
from receiver.alerts.model import alert_id
from receiver.filters import EventFilter
from receiver.telemetry import ReceiverMetrics

UTC = dt.timezone.utc
SECRET = "webhook-secret-for-tests"
ADMIN = "admin-token-alerts-0123456789"
GLOBEX = "auditor-token-alerts-globex-01"
TOKENS = [
    {"token": ADMIN, "role": "admin", "tenants": ["*"], "name": "sam.secops"},
    {"token": GLOBEX, "role": "auditor", "tenants": ["globex"], "name": "gus"},
]


class Hook:
    """A loopback webhook receiver: records each POST; answers with the queued status codes, then 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                hook.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def rules(hook_url: str, database: str = "audit") -> dict:
    return {
        "interval_seconds": 3600,  # the tests evaluate by hand
        "default_pack": False,
        "destinations": [{"name": "secops", "kind": "webhook", "url": hook_url, "secret": SECRET}],
        "rules": [
            {
                "name": "brute-force",
                "kind": "threshold",
                "match": {"action": "login", "outcome": "failure"},
                "group_by": ["user_id"],
                "threshold": 5,
                "window": "5m",
                "severity": "high",
                "destinations": ["secops"],
            },
            {
                "name": "grant",
                "kind": "match",
                "match": {"action": "grant"},
                "group_by": ["user_id"],
                "destinations": ["secops"],
            },
            {
                "name": "billing-silent",
                "kind": "silence",
                "match": {"service_name": "billing"},
                "window": "15m",
            },
            {
                "name": "many-deletes",
                "kind": "sql",
                "window": "1h",
                "query": "SELECT toString(tenant_id) AS tenant_id, count() AS count FROM "
                + database
                + ".audit_events"
                " WHERE action = 'delete' AND created_at > {window_start:DateTime64(6)}"
                " GROUP BY tenant_id HAVING count >= 3",
            },
        ],
    }


def send(endpoint: str, *events: dict, service: str = "web") -> None:
    now = dt.datetime.now(UTC)
    records = []
    for e in events:
        when = now - dt.timedelta(seconds=e.pop("ago", 0))
        name = e.pop("event_name", "audit.user.login")
        records.append(
            log_record(audit_attrs(**e), event_name=name, time_ns=int(when.timestamp() * 1_000_000) * 1000)
        )
    answer = export(endpoint, request(records, service_name=service))
    assert answer.partial_success.rejected_log_records == 0, answer


def failed_login(user: str, ago: float = 0, tenant: str = "acme") -> dict:
    return {
        "audit__tenant__id": tenant,
        "enduser__id": user,
        "audit__action": "login",
        "audit__outcome": "failure",
        "audit__resource__type": "session",
        "ago": ago,
    }


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def alerting(store, hook):
    receiver = start_receiver(store, admin_tokens=TOKENS, alerts=rules(hook.url, store.database))
    receiver.alerts.tick()  # the first evaluation takes over (positions start at the present)
    yield receiver, f"127.0.0.1:{receiver.grpc_port}"
    receiver.stop_listeners()


def test_threshold_fires_at_its_edge_once_per_window_and_signs_the_webhook(alerting, hook, store):
    receiver, grpc = alerting
    ev = receiver.alerts
    send(grpc, *(failed_login("bob", ago=60 - i) for i in range(4)))
    assert [a.rule for a in ev.tick()] == []  # 4 of 5
    send(grpc, failed_login("bob"), failed_login("alice"))
    fired = ev.tick()
    assert [(a.rule, dict(a.group), a.count) for a in fired] == [("brute-force", {"user_id": "bob"}, 5)]
    send(grpc, failed_login("bob"))
    assert ev.tick() == []  # the same window: no alert storm
    deadline = time.monotonic() + 20  # the receiver's delivery thread sends it
    while not hook.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    headers, body = hook.requests[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-otel-audit-signature"] == expected
    payload = json.loads(body)
    assert set(payload) == {
        "id",
        "rule",
        "tenant",
        "severity",
        "window_start",
        "window_end",
        "count",
        "group",
        "sample_event_ids",
        "fired_at",
    }
    assert (payload["rule"], payload["tenant"], payload["severity"], payload["count"]) == (
        "brute-force",
        "acme",
        "high",
        5,
    )
    assert len(payload["sample_event_ids"]) == 5
    # the alert is an audit event in its tenant, its id the alert's
    stored = store.search(EventFilter(event_name="audit.alert.fired"), 10)
    assert [(e["id"], e["tenant_id"], e["resource_id"]) for e in stored] == [
        (payload["id"], "acme", payload["id"])
    ]
    assert stored[0]["attributes"]["alert.rule"] == "brute-force"


def test_window_boundary_counts_only_events_inside_the_window(alerting):
    receiver, grpc = alerting
    # five failures, but the first is 6 minutes before the last: never 5 within 5 minutes
    send(grpc, failed_login("carol", ago=360), *(failed_login("carol", ago=30 - i) for i in range(4)))
    assert receiver.alerts.tick() == []
    send(grpc, failed_login("carol"))
    assert [a.count for a in receiver.alerts.tick()] == [5]


def test_match_silence_and_sql_rules(alerting):
    receiver, grpc = alerting
    ev = receiver.alerts
    grants = [
        {
            "audit__tenant__id": "acme",
            "enduser__id": u,
            "audit__action": "grant",
            "audit__resource__type": "role",
            "event_name": "audit.role.grant",
        }
        for u in ("root", "root", "ops")
    ]
    send(grpc, *grants)
    fired = sorted(ev.tick(), key=lambda a: a.group["user_id"])
    assert [(a.rule, a.group["user_id"], a.count) for a in fired] == [
        ("grant", "ops", 1),
        ("grant", "root", 2),
    ]
    assert ev.tick() == []  # each event alerts once
    # silence: billing sent an event 20 minutes ago and nothing since (window 15 minutes)
    send(grpc, {"audit__tenant__id": "acme", "audit__action": "read", "ago": 1200}, service="billing")
    silent = ev.tick()
    assert [(a.rule, dict(a.group), a.count) for a in silent] == [("billing-silent", {}, 0)]
    assert ev.tick() == []  # once per silence
    send(grpc, {"audit__tenant__id": "acme", "audit__action": "read"}, service="billing")
    assert ev.tick() == []  # it speaks again: no alert, re-armed
    # sql: three deletes within the hour in one tenant
    deletes = [
        {"audit__tenant__id": "globex", "audit__action": "delete", "event_name": "audit.doc.delete"}
    ] * 3
    send(grpc, *[dict(d, audit__event__id=str(uuid.uuid4())) for d in deletes])
    fired = ev.tick()
    assert [(a.rule, a.tenant, a.count) for a in fired] == [("many-deletes", "globex", 3)]
    assert ev.tick() == []  # once per window


def _evaluator(store, receiver, hook, clock=None, holder="r2") -> Evaluator:
    config = Alerts.model_validate(rules(hook.url, store.database))
    kwargs = {"clock": clock} if clock else {}
    return Evaluator(
        store, config, receiver.alerts._record, AlertMetrics(ReceiverMetrics().registry), holder, **kwargs
    )


def test_restart_mid_window_neither_misses_nor_refires(alerting, store, hook):
    receiver, grpc = alerting
    send(grpc, *(failed_login("dave", ago=10 - i) for i in range(3)))
    assert receiver.alerts.tick() == []
    # "restart": a new evaluator on the same store resumes from the stored positions
    receiver.alerts.stop()
    again = _evaluator(store, receiver, hook, holder=receiver.alerts.holder)
    send(grpc, failed_login("dave"), failed_login("dave"))
    fired = again.tick()
    assert [(a.rule, a.count) for a in fired] == [("brute-force", 5)]
    # killed before its positions were saved? the next one recomputes the same alert id: not twice
    third = _evaluator(store, receiver, hook, holder=receiver.alerts.holder)
    third._take_over(dt.datetime.now(UTC))
    third._watermarks = {}  # as if the positions had not moved
    assert third.tick() == []
    assert len(store.search(EventFilter(event_name="audit.alert.fired"), 10)) == 1


def test_failing_destination_is_retried_until_accepted(alerting, store, hook):
    receiver, grpc = alerting
    now = [dt.datetime.now(UTC)]
    ev = _evaluator(store, receiver, hook, clock=lambda: now[0], holder=receiver.alerts.holder)
    ev.tick()
    hook.statuses = [500, 503]
    send(grpc, *(failed_login("erin") for _ in range(5)))
    assert len(ev.tick()) == 1
    assert ev.deliverer.run_due() == 0 and len(hook.requests) == 1
    assert ev.deliverer.run_due() == 0 and len(hook.requests) == 1  # backing off
    now[0] += dt.timedelta(seconds=2)
    assert ev.deliverer.run_due() == 0 and len(hook.requests) == 2
    now[0] += dt.timedelta(seconds=5)
    assert ev.deliverer.run_due() == 1 and len(hook.requests) == 3
    assert len({json.loads(b)["id"] for _, b in hook.requests}) == 1
    # a new leader finds nothing pending: the delivery is recorded in the store
    fresh = _evaluator(store, receiver, hook, holder=receiver.alerts.holder)
    fresh._take_over(now[0])
    assert fresh.deliverer.status() == {}


def test_one_leader_per_term(alerting, store, hook):
    receiver, _ = alerting
    other = _evaluator(store, receiver, hook, holder="zz-other-receiver")
    assert other.tick() == [] and other._leading is False
    assert receiver.alerts._lead(dt.datetime.now(UTC)) is True


def test_alert_ids_need_the_receivers_key():
    key = 'brute-force|acme|{"user_id":"bob"}|x#1'
    assert alert_id(b"a" * 32, key) == alert_id(b"a" * 32, key)
    assert alert_id(b"a" * 32, key) != alert_id(b"b" * 32, key)
    assert uuid.UUID(alert_id(b"a" * 32, key)).version == 8


def test_alerts_api_lists_and_records_reviews(alerting, store):
    receiver, grpc = alerting
    send(grpc, *(failed_login("frank") for _ in range(5)))
    (alert,) = receiver.alerts.tick()
    base = f"http://127.0.0.1:{receiver.admin_port}"
    admin = httpx.Client(base_url=base, headers={"authorization": f"Bearer {ADMIN}"}, timeout=30)
    globex = httpx.Client(base_url=base, headers={"authorization": f"Bearer {GLOBEX}"}, timeout=30)
    listed = admin.get("/api/alerts").json()["alerts"]
    assert [(a["id"], a["status"], a["count"]) for a in listed] == [(alert.id, "open", 5)]
    assert listed[0]["events_query"]["user"] == "frank" and listed[0]["events_query"]["tenant"] == "acme"
    events = admin.get("/api/events", params=listed[0]["events_query"]).json()["events"]
    assert len(events) == 5
    assert globex.get("/api/alerts").json()["alerts"] == []
    url = f"/api/alerts/{alert.id}/review"
    assert globex.post(url, json={"note": "x"}).status_code == 404
    assert admin.post(url, content=b"note=x", headers={"content-type": "text/plain"}).status_code == 415
    assert admin.post(url, json={"note": ""}).status_code == 400
    answer = admin.post(url, json={"note": "frank mistyped after a reset; confirmed by phone"})
    assert answer.status_code == 201, answer.text
    (reviewed,) = admin.get("/api/alerts", params={"status": "reviewed"}).json()["alerts"]
    assert reviewed["reviews"][0]["reviewer"] == "sam.secops"
    assert admin.get("/api/alerts", params={"status": "open"}).json()["alerts"] == []
    (event,) = store.search(EventFilter(event_name="audit.alert.reviewed"), 10)
    assert (event["user_id"], event["resource_id"], event["tenant_id"]) == ("sam.secops", alert.id, "acme")
    assert event["reason"] == "frank mistyped after a reset; confirmed by phone"
    admin.close()
    globex.close()


def test_slack_and_otlp_destinations_carry_the_alert(hook):
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from receiver.alerts.config import Destination
    from receiver.alerts.destinations import deliver
    from receiver.alerts.model import Alert

    now = dt.datetime.now(UTC)
    alert = Alert(
        alert_id(b"k" * 32, "x"),
        "brute-force",
        "acme",
        "high",
        now - dt.timedelta(minutes=5),
        now,
        7,
        {"user_id": "bob"},
        ("e1",),
        now,
        ("s",),
        "7 failures",
    )
    with httpx.Client() as client:
        assert deliver(client, Destination(name="s", kind="slack", url=hook.url), alert) is None
        assert deliver(client, Destination(name="o", kind="otlp", url=hook.url), alert) is None
        hook.statuses = [500]
        assert deliver(client, Destination(name="w", kind="webhook", url=hook.url), alert).startswith(
            "HTTP 500"
        )
    (slack_headers, slack), (otlp_headers, otlp), _ = hook.requests
    text = json.loads(slack)["text"]
    assert (
        "brute-force" in text
        and "acme" in text
        and "user_id=bob" in text
        and "x-otel-audit-signature" not in slack_headers
    )
    assert otlp_headers["content-type"] == "application/x-protobuf"
    record = ExportLogsServiceRequest.FromString(otlp).resource_logs[0].scope_logs[0].log_records[0]
    attrs = {kv.key: kv.value.string_value for kv in record.attributes}
    assert (record.event_name, attrs["audit.event.id"], attrs["alert.count"]) == (
        "audit.alert.fired",
        alert.id,
        "7",
    )
