"""Acknowledged ⇒ stored (issue 13 items 1-3): every record an export does not report rejected is
in the store afterwards, through the real transports, the real writers and real chDB.

- the idempotency key is (tenant, id): another tenant's event with the same id is not a duplicate,
  within one commit or against the store, on both writers and both store lookups;
- an event time the tenant's retention would delete on insert (or absurdly in the future) is
  rejected through OTLP partial success, naming the limit;
- non-finite numbers in ``audit.changes`` are rejected, and a stored row holding such JSON does
  not break the read API.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import httpx
import pytest
from conftest import start_receiver
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from otlp_builders import audit_attrs, export, log_record, request

from receiver.filters import EventFilter
from receiver.store.base import SqlStore

ACME = "acme-ingest-token-0123456789"
GLOBEX = "globex-ingest-token-0123456789"
TOKENS = [{"token": ACME, "tenant": "acme"}, {"token": GLOBEX, "tenant": "globex"}]
PB = {"content-type": "application/x-protobuf"}


def stored(store) -> list[tuple[str, str]]:
    return sorted((r["tenant_id"], r["id"]) for r in store.search(EventFilter(), 1000))


@pytest.mark.parametrize("ack", ["store", "journal"])
def test_the_same_id_from_two_tenants_in_one_commit_is_stored_for_both(store, ack):
    receiver = start_receiver(store, ack=ack)
    try:
        shared = str(uuid.uuid4())
        records = [
            log_record(audit_attrs(audit__event__id=shared, audit__tenant__id="globex")),
            log_record(audit_attrs(audit__event__id=shared, audit__tenant__id="acme")),
            # a true duplicate within the commit is still dropped
            log_record(audit_attrs(audit__event__id=shared, audit__tenant__id="acme")),
        ]
        answer = export(f"127.0.0.1:{receiver.grpc_port}", request(records))
        assert not answer.HasField("partial_success")
        assert receiver.flush(30)
        assert stored(store) == [("acme", shared), ("globex", shared)]
    finally:
        receiver.stop_listeners()


def test_an_id_stored_for_one_tenant_does_not_swallow_another_tenants_event(store):
    """globex sends an id already stored for acme, in a commit that also holds acme's events
    (the journal batches both requests into one commit)."""
    receiver = start_receiver(
        store, ack="journal", ingest_tokens=TOKENS, ingest={"commit_interval_seconds": 30}
    )
    try:
        grpc_at = f"127.0.0.1:{receiver.grpc_port}"
        shared, fresh = str(uuid.uuid4()), str(uuid.uuid4())
        export(
            grpc_at, request([log_record(audit_attrs(audit__event__id=shared, audit__tenant__id=None))]), ACME
        )
        assert receiver.flush(30)
        # one commit: globex's event (over OTLP/HTTP), acme's retry of its stored event, a new acme event
        body = request(
            [log_record(audit_attrs(audit__event__id=shared, audit__tenant__id=None, enduser__id="gina"))]
        ).SerializeToString()
        url = f"http://127.0.0.1:{receiver.http_port}/v1/logs"
        r = httpx.post(url, content=body, headers={**PB, "authorization": f"Bearer {GLOBEX}"})
        assert r.status_code == 200
        assert not ExportLogsServiceResponse.FromString(r.content).HasField("partial_success")
        retry_and_new = [
            log_record(audit_attrs(audit__event__id=shared, audit__tenant__id=None)),
            log_record(audit_attrs(audit__event__id=fresh, audit__tenant__id=None)),
        ]
        export(grpc_at, request(retry_and_new), ACME)
        assert receiver.flush(30)
        assert stored(store) == sorted([("acme", shared), ("acme", fresh), ("globex", shared)])
        (globex_row,) = store.search(EventFilter(tenant="globex"), 10)
        assert globex_row["user_id"] == "gina"
    finally:
        receiver.stop_listeners()


def test_both_store_lookups_answer_tenant_id_pairs(store):
    """chDB's Arrow-ids lookup and the server engines' chunked bound arrays (run here on chDB)."""
    receiver = start_receiver(store)
    try:
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        records = [
            log_record(audit_attrs(audit__event__id=a, audit__tenant__id="acme")),
            log_record(audit_attrs(audit__event__id=b, audit__tenant__id="globex")),
        ]
        export(f"127.0.0.1:{receiver.grpc_port}", request(records))
    finally:
        receiver.stop_listeners()
    many = [str(uuid.uuid4()) for _ in range(5000)] + [a, b]  # more than one bound-array chunk
    for lookup in (store.existing_ids, lambda t, i: SqlStore.existing_ids(store, t, i)):
        assert lookup(["acme", "globex"], many) == {("acme", a), ("globex", b)}
        assert lookup(["acme"], many) == {("acme", a)}


# -- item 3: non-finite numbers in audit.changes ---------------------------------------------
def test_non_finite_changes_are_rejected_and_finite_ones_stored(receiver, store):
    cases = {
        "nan-text": '{"amount":{"old":1,"new":NaN}}',
        "inf-text": '{"amount":{"old":-Infinity,"new":1}}',
        "overflow": '{"amount":{"old":1,"new":1e999}}',
        "kvlist-nan": {"amount": {"old": 1.5, "new": float("nan")}},
        "kvlist-inf": {"amount": {"old": float("inf"), "new": 2.0}},
        "fine": {"amount": {"old": 1.5, "new": 2.25}},
    }
    records = [
        log_record(audit_attrs(audit__changes=value, enduser__id=name)) for name, value in cases.items()
    ]
    answer = export(f"127.0.0.1:{receiver.grpc_port}", request(records))
    assert answer.partial_success.rejected_log_records == 5
    assert "non-finite number (NaN or Infinity)" in answer.partial_success.error_message
    (row,) = store.search(EventFilter(), 10)
    assert row["user_id"] == "fine" and row["changes"] == {"amount": {"new": 2.25, "old": 1.5}}


def test_a_stored_row_with_non_standard_json_does_not_break_the_read_api(receiver, store):
    from receiver.model import AuditEvent, events_to_table

    now = dt.datetime.now(dt.timezone.utc)
    bad, good = str(uuid.uuid4()), str(uuid.uuid4())
    raw = '{"amount":{"new":NaN,"old":Infinity}}'  # as ingest stored it before the fix
    store.insert(
        events_to_table(
            [
                AuditEvent(bad, "acme", "u", "update", "invoice", "audit.invoice.update", now, changes=raw),
                AuditEvent(
                    good, "acme", "u", "read", "invoice", "audit.invoice.read", now - dt.timedelta(seconds=1)
                ),
            ]
        )
    )
    admin = f"http://127.0.0.1:{receiver.admin_port}"
    page = httpx.get(f"{admin}/api/events", params={"tenant": "acme"}, timeout=30)
    assert page.status_code == 200, page.text
    events = {e["id"]: e for e in page.json()["events"]}
    assert events[bad]["changes"] == raw and events[good]["changes"] is None
    one = httpx.get(f"{admin}/api/events/{bad}", timeout=30)
    assert one.status_code == 200 and one.json()["changes"] == raw
    lines = httpx.get(f"{admin}/api/export.jsonl", timeout=30).text.splitlines()
    assert {json.loads(line)["id"]: json.loads(line)["changes"] for line in lines}[bad] == raw


# -- item 2: event times the store would delete on arrival ------------------------------------
DAY = dt.timedelta(days=1)


def apply_ttl(store) -> None:
    """What a TTL merge does within hours (merge_with_ttl_timeout), now."""
    from receiver.store.sql import Statement

    store.execute(Statement(f"OPTIMIZE TABLE {store.database}.audit_events FINAL"))


def _ns(moment: dt.datetime) -> int:
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1) * 1000


def test_times_outside_the_retention_or_far_ahead_are_rejected_and_the_rest_stored(store):
    receiver = start_receiver(store, retention={"tenants": {"acme": {"retain_days": 30}}})
    try:
        now = dt.datetime.now(dt.timezone.utc)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        times = {
            "one-ns": 1,
            "40-days": _ns(now - 40 * DAY),
            # retain_until today: the TTL deletes it on insert
            "expires-today": _ns(midnight - 30 * DAY),
            # retain_until tomorrow: kept unless tomorrow begins within the hour
            "expires-tomorrow": _ns(midnight - 29 * DAY),
            "29-days": _ns(now - 29 * DAY + dt.timedelta(hours=2)),
            "now": _ns(now),
            "in-30-min": _ns(now + dt.timedelta(minutes=30)),
            "in-2-hours": _ns(now + dt.timedelta(hours=2)),
            "year-2200": _ns(dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc)),
        }
        ids = {name: str(uuid.uuid4()) for name in times}
        records = [
            log_record(audit_attrs(audit__event__id=ids[name], enduser__id=name), time_ns=t)
            for name, t in times.items()
        ]
        answer = export(f"127.0.0.1:{receiver.grpc_port}", request(records))
        message = answer.partial_success.error_message
        late_evening = midnight + DAY - now <= dt.timedelta(hours=1)
        rejected = {"one-ns", "40-days", "expires-today", "in-2-hours", "year-2200"}
        if late_evening:
            rejected.add("expires-tomorrow")
        assert answer.partial_success.rejected_log_records == len(rejected), message
        assert "older than tenant 'acme' keeps events (retain_days 30" in message
        assert "more than 1 hour ahead of the receiver's clock" in message
        # acknowledged ⇒ stored: everything not rejected is in the store, and stays there
        apply_ttl(store)
        expected = sorted(ids[name] for name in times if name not in rejected)
        assert sorted(r["id"] for r in store.search(EventFilter(), 100)) == expected
        admin = f"http://127.0.0.1:{receiver.admin_port}"
        (report,) = httpx.get(f"{admin}/api/verify", params={"tenant": "acme"}, timeout=60).json()["tenants"]
        assert report["status"] == "intact", report
        assert report["events"] == len(expected)
    finally:
        receiver.stop_listeners()


def test_events_that_age_past_retention_in_the_journal_take_no_chain_position(store, tmp_path):
    """The store was down long enough for journaled events to pass their retention: at replay
    they are left out (counted, logged) instead of being chained and deleted by the TTL on
    insert; a tenant on legal hold keeps them (the hold's TTL does)."""
    import pyarrow as pa

    from receiver import pipeline
    from receiver.journal import Journal
    from receiver.pipeline.auth import OPEN

    receiver = start_receiver(store)  # the hold, through the retention service (its TTL follows)
    try:
        assert receiver.retention.set_hold("globex", True, "litigation", actor="test")
        export(f"127.0.0.1:{receiver.grpc_port}", request([log_record(audit_attrs(enduser__id="before"))]))
    finally:
        receiver.stop_listeners()
    names = [("acme", "aged"), ("acme", "fresh"), ("globex", "aged-held")]
    records = [log_record(audit_attrs(audit__tenant__id=t, enduser__id=u)) for t, u in names]
    table = pipeline.run(request(records), OPEN, lambda _t: 365).table
    # as the pipeline made them 366 days ago (retain_days 365): their retention ended yesterday
    then = dt.datetime.now(dt.timezone.utc) - 366 * DAY
    aged = [user.startswith("aged") for _, user in names]
    columns = {
        "created_at": [
            then if old else c for old, c in zip(aged, table.column("created_at").to_pylist(), strict=True)
        ],
        "retain_until": [
            (then + 365 * DAY).date() if old else d
            for old, d in zip(aged, table.column("retain_until").to_pylist(), strict=True)
        ],
        "hot_until": [
            (then + 365 * DAY).date() if old else d
            for old, d in zip(aged, table.column("hot_until").to_pylist(), strict=True)
        ],
    }
    for name, values in columns.items():
        index = table.schema.get_field_index(name)
        field = table.schema.field(index)
        table = table.set_column(index, field, pa.array(values, field.type))
    journal_dir = tmp_path / "journal"
    journal = Journal(journal_dir)
    journal.open()
    journal.append(table)
    journal.close()

    receiver = start_receiver(store, ack="journal", ingest={"journal_dir": str(journal_dir)})
    try:
        assert receiver.flush(60)
        apply_ttl(store)
        users = sorted((r["tenant_id"], r["user_id"]) for r in store.search(EventFilter(), 100))
        assert ("acme", "fresh") in users and ("globex", "aged-held") in users
        assert ("acme", "aged") not in users
        admin = f"http://127.0.0.1:{receiver.admin_port}"
        for tenant in ("acme", "globex"):
            answer = httpx.get(f"{admin}/api/verify", params={"tenant": tenant}, timeout=60)
            (report,) = answer.json()["tenants"]
            assert report["status"] == "intact", report
        metrics = httpx.get(f"{admin}/metrics", timeout=30).text
        assert "otel_audit_expired_events_total 1.0" in metrics
    finally:
        receiver.stop_listeners()


# -- item 1, the retention job's own events ----------------------------------------------------
#: main's namespace for the job's UUIDv5 ids (public in the source: anyone could compute them)
OLD_NAMESPACE = uuid.UUID("6f1d0a52-4c1e-4f0e-9a57-0b6a1f3c5e21")


def test_an_ingest_client_cannot_preempt_the_retention_jobs_own_events(store, tmp_path):
    from receiver.config import load_config
    from receiver.ingest import IngestConsumer
    from receiver.model import AuditEvent, events_to_table
    from receiver.pipeline.auth import IngestIdentity
    from receiver.retention.scheduler import build_retention
    from receiver.telemetry import ReceiverMetrics
    from receiver.writer import GroupCommitWriter

    config = load_config(
        None,
        retention={"default": {"hot_days": 30, "retain_days": 3650}},
        archive={"path": str(tmp_path / "archive")},
    )
    writer = GroupCommitWriter(store, ReceiverMetrics())
    consumer = IngestConsumer(config, writer, ReceiverMetrics())

    def ingest(req, identity):
        return consumer.ingest(req, identity, "internal")

    try:
        day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=100)
        created = dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.timezone.utc)
        hot_until = day + dt.timedelta(days=30)
        event = AuditEvent(
            str(uuid.uuid4()),
            "acme",
            "alice",
            "read",
            "invoice",
            "audit.invoice.read",
            created,
            hot_until=hot_until,
        )
        event.retain_until = day + dt.timedelta(days=3650)
        store.insert(events_to_table([event]))
        # acme's ingest client sends, first, the id the job will give its archive event
        month = hot_until.year * 100 + hot_until.month
        key = ("archive", "acme", str(month), f"{day.isoformat()}/events-0001.parquet")
        predicted = str(uuid.uuid5(OLD_NAMESPACE, "\x1f".join(key)))
        forged = log_record(
            audit_attrs(audit__event__id=predicted, audit__tenant__id=None, enduser__id="mallory"),
            event_name="audit.audit_log.archive",
        )
        assert ingest(request([forged]), IngestIdentity(tenant="acme")).rejected == 0

        report = build_retention(store, config, ingest).run()
        assert report.rows_archived == 1
        archived = store.search(EventFilter(event_name="audit.audit_log.archive", tenant="acme"), 10)
        assert sorted(e["user_id"] for e in archived) == ["mallory", "otel-audit-retention"]
        # the job's ids stay stable across runs (a rerun after a kill records the same id)
        from receiver.retention.events import id_key_for

        assert id_key_for(store) == id_key_for(store) and len(id_key_for(store)) == 32
    finally:
        writer.close()
