"""The vertical slice through a real gRPC server into real chDB: mapping, filtering, partial success."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import httpx
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from otlp_builders import audit_attrs, export, log_record, request

from receiver.filters import EventFilter
from receiver.model import CSV_COLUMNS


def test_plain_sdk_logger_is_stored_with_every_column(receiver, store):
    """A plain OpenTelemetry SDK logger (no otel_audit) sending the SPEC attributes."""
    provider = LoggerProvider(resource=Resource.create({"service.name": "billing"}))
    exporter = OTLPLogExporter(endpoint=f"127.0.0.1:{receiver.grpc_port}", insecure=True)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    event_id = str(uuid.uuid4())
    when = dt.datetime.now(dt.timezone.utc).replace(microsecond=123456) - dt.timedelta(hours=1)
    when_ns = int(when.replace(microsecond=0).timestamp()) * 10**9 + 123_456_789
    provider.get_logger("plain").emit(
        event_name="audit.payment.update",
        timestamp=when_ns,
        body="refund approved",
        attributes={
            "audit.event.id": event_id,
            "audit.tenant.id": "acme",
            "enduser.id": "bob",
            "audit.actor.type": "service",
            "audit.action": "update",
            "audit.outcome": "denied",
            "audit.resource.type": "payment",
            "audit.resource.id": "pay-42",
            "audit.changes": json.dumps({"amount": {"old": 10, "new": 12}}),
            "client.address": "203.0.113.9",
            "user_agent.original": "curl/8.0",
            "session.id": "s-1",
            "http.request.method": "PUT",
            "http.route": "/payments/{id}",
            "http.response.status_code": 403,
            "ticket": "INC-7",
            "retries": 3,
        },
    )
    provider.shutdown()
    rows = store.search(EventFilter(), 10)
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == event_id
    assert row["tenant_id"] == "acme"
    assert row["user_id"] == "bob"
    assert row["actor_type"] == "service"
    assert row["action"] == "update"
    assert row["outcome"] == "denied"
    assert row["resource_type"] == "payment"
    assert row["resource_id"] == "pay-42"
    assert row["event_name"] == "audit.payment.update"
    assert row["changes"] == {"amount": {"old": 10, "new": 12}}
    assert row["ip_address"] == "203.0.113.9"
    assert row["user_agent"] == "curl/8.0"
    assert row["created_at"] == when.strftime("%Y-%m-%dT%H:%M:%S.123456Z")
    received = dt.datetime.fromisoformat(row["received_at"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.timezone.utc) - received).total_seconds()) < 60
    assert row["service_name"] == "billing"
    assert row["session_id"] == "s-1"
    assert (row["http_method"], row["http_route"], row["http_status"]) == ("PUT", "/payments/{id}", 403)
    assert row["reason"] == "refund approved"
    assert row["attributes"] == {"ticket": "INC-7", "retries": "3"}
    assert row["trace_id"] == "" and row["span_id"] == ""


def test_non_audit_dropped_and_invalid_records_get_partial_success(receiver, store):
    good = [log_record(audit_attrs(enduser__id=f"user-{i}")) for i in range(3)]
    non_audit = [log_record({"msg": "hello"}, event_name=""), log_record({}, event_name="app.started")]
    bad = [
        log_record(audit_attrs(audit__event__id=None)),
        log_record(audit_attrs(audit__event__id="not-a-uuid")),
        log_record(audit_attrs(audit__outcome="maybe")),
        log_record(audit_attrs(enduser__id=None)),
        log_record(audit_attrs(), time_ns=0),
    ]
    response = export(
        f"127.0.0.1:{receiver.grpc_port}", request(good[:1] + bad[:2] + non_audit + good[1:] + bad[2:])
    )
    assert response.partial_success.rejected_log_records == 5
    message = response.partial_success.error_message
    assert (
        "audit.event.id is missing" in message and "is not a UUID" in message and "audit.outcome" in message
    )
    stored = sorted(r["user_id"] for r in store.search(EventFilter(), 100))
    assert stored == ["user-0", "user-1", "user-2"]
    metrics = httpx.get(f"http://127.0.0.1:{receiver.admin_port}/metrics").text
    assert "otel_audit_dropped_non_audit_records_total 2.0" in metrics
    assert "otel_audit_accepted_events_total 3.0" in metrics


def test_fully_valid_request_has_no_partial_success(receiver):
    response = export(f"127.0.0.1:{receiver.grpc_port}", request([log_record(audit_attrs())]))
    assert not response.HasField("partial_success")


def test_older_sdk_event_name_attribute_and_kvlist_changes(receiver, store):
    attrs = audit_attrs(event__name="audit.role.grant", audit__action="grant", audit__resource__type="role")
    attrs["audit.changes"] = {"role": {"old": "viewer", "new": "editor"}}
    attrs["user.id"] = attrs.pop("enduser.id")
    response = export(f"127.0.0.1:{receiver.grpc_port}", request([log_record(attrs, event_name="")]))
    assert response.partial_success.rejected_log_records == 0
    (row,) = store.search(EventFilter(), 10)
    assert row["event_name"] == "audit.role.grant"
    assert row["changes"] == {"role": {"old": "viewer", "new": "editor"}}
    assert row["user_id"] == "alice"
    assert "event.name" not in row["attributes"]


def test_trace_context_is_stored_as_lowercase_hex(receiver, store):
    trace_id, span_id = bytes(range(16)), bytes(range(8))
    export(
        f"127.0.0.1:{receiver.grpc_port}",
        request([log_record(audit_attrs(), trace_id=trace_id, span_id=span_id)]),
    )
    (row,) = store.search(EventFilter(), 10)
    assert row["trace_id"] == "000102030405060708090a0b0c0d0e0f"
    assert row["span_id"] == "0001020304050607"


def test_retried_event_id_is_stored_once(receiver, store):
    attrs = audit_attrs()
    endpoint = f"127.0.0.1:{receiver.grpc_port}"
    export(endpoint, request([log_record(attrs)]))
    export(endpoint, request([log_record(attrs), log_record(attrs)]))
    assert store.count(EventFilter()) == 1


def test_api_search_filters_and_pages(receiver, store):
    endpoint = f"127.0.0.1:{receiver.grpc_port}"
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=1)
    base = int(start.timestamp()) * 10**9
    records = [
        log_record(
            audit_attrs(
                enduser__id=f"u{i % 3}",
                audit__tenant__id="acme" if i % 2 else "globex",
                client__address=f"10.0.0.{i}",
            ),
            time_ns=base + i * 1_000_000_000,
        )
        for i in range(25)
    ]
    export(endpoint, request(records))
    api = f"http://127.0.0.1:{receiver.admin_port}/api/events"
    seen: list[str] = []
    cursor = None
    while True:
        params = {"tenant": "acme", "limit": "5", **({"cursor": cursor} if cursor else {})}
        page = httpx.get(api, params=params).json()
        seen += [e["created_at"] for e in page["events"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 12 and seen == sorted(seen, reverse=True) and len(set(seen)) == 12
    assert [e["user_id"] for e in httpx.get(api, params={"ip": "10.0.0.4"}).json()["events"]] == ["u1"]
    since, until = (
        (start + dt.timedelta(seconds=5)).isoformat(),
        (start + dt.timedelta(seconds=10)).isoformat(),
    )
    window = httpx.get(api, params={"since": since, "until": until}).json()
    assert len(window["events"]) == 5
    assert httpx.get(api, params={"limit": "5000"}).status_code == 400
    assert httpx.get(api, params={"since": "yesterday"}).json()["error"].startswith("since:")
    assert httpx.get(api, params={"colour": "red"}).status_code == 400


def test_csv_columns_are_the_spec_columns():
    assert ",".join(CSV_COLUMNS) == (
        "id,created_at,tenant_id,user_id,actor_type,action,outcome,resource_type,"
        "resource_id,event_name,ip_address,user_agent,changes,reason,service_name,trace_id,received_at"
    )
