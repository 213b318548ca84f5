"""The retention job on a real chDB store with events dated in the past: archive, manifest,
late arrivals, restore, expiry and legal holds."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from receiver.config import load_config
from receiver.filters import EventFilter
from receiver.ingest import IngestConsumer
from receiver.model import AuditEvent, events_to_table
from receiver.retention.restore import restore, status
from receiver.retention.scheduler import build_retention
from receiver.retention.service import RetentionService, month_last_day
from receiver.store import retention_sql as R
from receiver.store.sql import Statement
from receiver.telemetry import ReceiverMetrics
from receiver.writer import GroupCommitWriter

UTC = dt.timezone.utc
TODAY = dt.datetime.now(UTC).date()


def due(day: dt.date, hot_days: int) -> bool:
    """The archive takes a row once the month of its hot_until is over."""
    hot_until = day + dt.timedelta(days=hot_days)
    return month_last_day(hot_until.year * 100 + hot_until.month) < TODAY


def events_on(tenant: str, day: dt.date, n: int, hot_days: int) -> list[AuditEvent]:
    return [
        AuditEvent(
            id=str(uuid.uuid4()),
            tenant_id=tenant,
            user_id=f"user-{i}",
            action="update",
            resource_type="invoice",
            resource_id=f"inv-{i}",
            event_name="audit.invoice.update",
            created_at=dt.datetime(day.year, day.month, day.day, 1 + i, 2, 3, 456789 + i, tzinfo=UTC),
            received_at=dt.datetime(day.year, day.month, day.day, 23, tzinfo=UTC),
            changes=json.dumps({"amount": {"old": i, "new": i + 1}}),
            ip_address="203.0.113.7",
            attributes={"ticket": f"T-{i}", "quote": "it's \\ here"},
            retain_until=TODAY + dt.timedelta(days=5000),
            hot_until=day + dt.timedelta(days=hot_days),
        )
        for i in range(n)
    ]


@pytest.fixture
def make_service(store, tmp_path):
    writers: list[GroupCommitWriter] = []

    def make(retention: dict) -> RetentionService:
        config = load_config(None, retention=retention, archive={"path": str(tmp_path / "archive")})
        writer = GroupCommitWriter(store, ReceiverMetrics())
        writers.append(writer)
        consumer = IngestConsumer(config, writer, ReceiverMetrics())
        return build_retention(
            store, config, lambda request, identity: consumer.ingest(request, identity, "internal")
        )

    yield make
    for w in writers:
        w.close()


def system_events(store, event_name: str) -> list[dict]:
    return store.search(EventFilter(event_name=event_name), 1000)


def test_archive_moves_exactly_the_old_months_and_restore_brings_them_back(store, make_service):
    svc = make_service({"default": {"hot_days": 30, "retain_days": 3650}})
    days = [TODAY - dt.timedelta(days=back) for back in range(0, 160, 6)]
    for day in days:
        store.insert(events_to_table(events_on("acme", day, 3, 30)))
    store.insert(events_to_table(events_on("globex", days[-1], 2, 30)))
    old = sorted(d for d in days if due(d, 30))
    assert 10 <= len(old) < len(days)  # some months move, the rest stay hot
    originals = {
        d: store.query_table(R.day_rows(store.database, "audit_events", "acme", d)).to_pylist() for d in old
    }

    report = svc.run()

    target = svc.target
    assert target.tenants() == ["acme", "globex"]
    assert target.days("acme") == old and report.days_archived == len(old) + 1
    assert report.rows_archived == 3 * len(old) + 2
    for day in old:
        manifest = target.manifest("acme", day)
        (entry,) = manifest.files
        data = Path(target.day_dir("acme", day), entry.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry.sha256 and entry.bytes == len(data)
        doc = json.loads(Path(target.day_dir("acme", day), "manifest.json").read_text())
        assert doc["rows"] == 3 and doc["first_created_at"].startswith(day.isoformat())
        assert (
            pq.read_metadata(Path(target.day_dir("acme", day), entry.name)).row_group(0).column(0).compression
            == "ZSTD"
        )
    # the hot store keeps exactly the days not archived (plus the job's own audit events)
    hot_days = {
        r["created_at"][:10]
        for r in store.search(EventFilter(tenant="acme", event_name="audit.invoice.update"), 1000)
    }
    assert hot_days == {d.isoformat() for d in days if d not in old}
    archived_events = system_events(store, "audit.audit_log.archive")
    assert {e["tenant_id"] for e in archived_events} == {"acme", "globex"}
    assert all(e["actor_type"] == "system" and e["service_name"] == "otel-audit" for e in archived_events)

    # rerun: nothing new, no file twice
    again = svc.run()
    assert again.days_archived == 0 and again.months_archived == []
    assert all(len(target.manifest("acme", d).files) == 1 for d in old)

    # a late event for an archived day (and a client's retry of an archived one) comes back hot
    late_day = old[0]
    late = events_on("acme", late_day, 2, 30)
    retry = events_on("acme", late_day, 1, 30)
    retry[0].id = originals[late_day][0]["id"].__str__()
    store.insert(events_to_table(late + retry))
    svc.run()
    manifest = target.manifest("acme", late_day)
    assert [f.rows for f in manifest.files] == [3, 2] and manifest.rows == 5
    kept_from = min(d for d in days if d not in old)
    assert store.count(EventFilter(tenant="acme", until=dt.datetime.combine(kept_from, dt.time(), UTC))) == 0

    # restore: every archived acme day, identical to what was stored, verified; twice is no double
    restored = restore(svc, "acme", old[0], old[-1] + dt.timedelta(days=1))
    assert restored.verified and restored.rows == 3 * len(old) + 2 and len(restored.days) == len(old)
    for day, rows in originals.items():
        back = store.query_table(
            R.day_rows(store.database, R.RESTORED_TABLE, "acme", day, final=True)
        ).to_pylist()
        back_by_id = {str(r["id"]): r for r in back}
        for row in rows:
            assert back_by_id[str(row["id"])] == row
    assert restore(svc, "acme", old[0], TODAY).already_restored == len(old)
    count = store.query_table(
        Statement(f"SELECT count() AS n FROM {store.database}.{R.RESTORED_TABLE} FINAL")
    )
    assert count.column("n")[0].as_py() == 3 * len(old) + 2

    # a tampered archive file is refused on restore
    entry = target.manifest("acme", old[1]).files[0]
    path = Path(target.day_dir("acme", old[1]), entry.name)
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(Exception, match="SHA-256"):
        restore(svc, "acme", old[1], old[1] + dt.timedelta(days=1))


def test_expiry_deletes_past_retain_days_except_under_legal_hold(store, make_service):
    # first a long policy: old months go to the archive, the "ttl-" tenants keep everything hot
    make_service(
        {
            "default": {"hot_days": 10, "retain_days": 3650},
            "tenants": {"ttl-only": {"hot_days": 3650}, "ttl-held": {"hot_days": 3650}},
        }
    ).run()
    days = [TODAY - dt.timedelta(days=back) for back in range(0, 120, 8)]
    for tenant, hot_days in (("gone", 10), ("kept", 10), ("ttl-only", 3650), ("ttl-held", 3650)):
        store.insert(events_to_table([e for day in days for e in events_on(tenant, day, 2, hot_days)]))
    first = make_service(
        {
            "default": {"hot_days": 10, "retain_days": 3650},
            "tenants": {"ttl-only": {"hot_days": 3650}, "ttl-held": {"hot_days": 3650}},
        }
    ).run()
    assert {m.split("/")[0] for m in first.months_archived} == {"gone", "kept"}
    assert first.rows_archived == 2 * 2 * len([d for d in days if due(d, 10)])
    # then the policy shrinks to 40 days (it applies to stored rows too), and holds are set
    svc = make_service(
        {
            "default": {"hot_days": 10, "retain_days": 40},
            "tenants": {"ttl-only": {"hot_days": 40}, "ttl-held": {"hot_days": 40}},
        }
    )
    assert svc.set_hold("ttl-held", True, "case 9", actor="legal@corp")
    assert svc.set_hold("kept", True, "litigation 2026-17", actor="legal@corp")
    assert not svc.set_hold("kept", True, "again")
    assert {h.tenant_id: h.reason for h in svc.holds()} == {
        "kept": "litigation 2026-17",
        "ttl-held": "case 9",
    }
    expired = {d for d in days if d + dt.timedelta(days=40) <= TODAY}
    archived = {d for d in days if due(d, 10)}
    assert len(expired & archived) >= 5

    report = svc.run()

    def hot(tenant: str) -> set[dt.date]:
        rows = store.search(EventFilter(tenant=tenant, event_name="audit.invoice.update"), 1000)
        return {dt.date.fromisoformat(r["created_at"][:10]) for r in rows}

    # TTL in the store: past retain_days gone, unless held
    assert hot("ttl-only") == set(days) - expired
    assert hot("ttl-held") == set(days)
    # archive: expired days deleted for the unheld tenant, each deletion an audit event
    assert set(svc.target.days("gone")) & expired == set()
    assert set(svc.target.days("kept")) == archived and hot("kept") | archived == set(days)
    deleted = {e["resource_id"] for e in system_events(store, "audit.audit_archive.delete")}
    assert (
        deleted == {f"gone/{d.isoformat()}" for d in expired & archived} == set(report.archive_days_deleted)
    )
    assert Counter(e["tenant_id"] for e in system_events(store, "audit.legal_hold.create")) == {
        "kept": 1,
        "ttl-held": 1,
    }
    by_tenant = {s["tenant"]: s for s in status(svc)}
    assert by_tenant["kept"]["legal_hold"]["reason"] == "litigation 2026-17"
    assert by_tenant["kept"]["next_expiry"] is None and by_tenant["gone"]["next_expiry"] is not None

    # hold lifted: the next run expires what the hold kept, in the store and the archive
    assert svc.set_hold("kept", False, "case closed") and svc.set_hold("ttl-held", False)
    svc.run()
    assert set(svc.target.days("kept")) & expired == set() and hot("kept") & expired == set()
    assert hot("ttl-held") == set(days) - expired
    assert len(system_events(store, "audit.audit_archive.delete")) == 2 * len(expired & archived)


def test_one_group_commit_may_span_many_tenant_partitions(store):
    # events from 150 tenants and as many months: over ClickHouse's default of 100 partitions
    store.insert(
        events_to_table(
            [
                e
                for i in range(150)
                for e in events_on(f"tenant-{i}", TODAY - dt.timedelta(days=i * 10), 1, 90)
            ]
        )
    )
    assert store.count(EventFilter()) == 150


@pytest.fixture(params=["clickhouse-connect-chdb", "clickhouse-live"])
def server_engine(request: pytest.FixtureRequest, chdb_root):
    """The server engine's code path (clickhouse-connect: parameters bound by the server side
    of the protocol), over chDB here and over a live server when one is configured."""
    import os

    import clickhouse_connect

    from receiver.store.clickhouse_store import ClickHouseStore

    db = f"r_{uuid.uuid4().hex[:10]}"
    if request.param == "clickhouse-connect-chdb":
        client = clickhouse_connect.get_client(interface="chdb", path=str(chdb_root))
        engine = ClickHouseStore(f"clickhouse://localhost/{db}", client=client)
    else:
        url = os.environ.get("OTEL_AUDIT_TEST_CLICKHOUSE_URL")
        if not url:
            pytest.skip("OTEL_AUDIT_TEST_CLICKHOUSE_URL not set: no live ClickHouse server")
        engine = ClickHouseStore(url.rstrip("/") + "/" + db)
    yield engine
    engine.close()


def test_hold_ttl_archive_and_restore_on_the_server_engine(server_engine, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a server store keeps its integrity state in ./otel-audit-integrity
    tenant = "o'brien\\\tco"  # quote, backslash and tab travel as bound parameters, also in the TTL
    config = load_config(
        None,
        retention={"default": {"hot_days": 30, "retain_days": 100}},
        archive={"path": str(tmp_path / "archive")},
    )
    writer = GroupCommitWriter(server_engine, ReceiverMetrics())
    try:
        consumer = IngestConsumer(config, writer, ReceiverMetrics())
        svc = build_retention(
            server_engine, config, lambda request, identity: consumer.ingest(request, identity, "internal")
        )
        days = [TODAY - dt.timedelta(days=back) for back in (0, 50, 90, 150)]
        for day in days:
            server_engine.insert(events_to_table(events_on(tenant, day, 2, 30)))
            server_engine.insert(events_to_table(events_on("other", day, 2, 30)))
        assert svc.set_hold(tenant, True, "case 1")
        svc.run()
        expired = {d for d in days if d + dt.timedelta(days=100) <= TODAY}
        archived = {d for d in days if due(d, 30)}
        assert set(svc.target.days(tenant)) == archived  # held: even the expired day is kept
        assert set(svc.target.days("other")) == archived - expired
        restored = restore(svc, tenant, days[-1], TODAY + dt.timedelta(days=1))
        assert restored.verified and restored.rows == 2 * len(archived)
    finally:
        writer.close()
