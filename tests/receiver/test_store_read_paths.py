"""The store's read paths after the issue 8 tuning: exports stream without the engine's
read-ahead buffers, the events table writes small compressed blocks (schema 060), and searches
read only the API's columns while keeping their order, pages and tenant scope, and an API
page made as JSON by the engine equals those rows."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from receiver.filters import Cursor, EventFilter
from receiver.formats import csv_cell
from receiver.model import API_COLUMNS, AuditEvent, events_to_table
from receiver.store import migrations, sql
from receiver.store.synthetic import SyntheticSpec


def test_export_streams_merge_parts_without_buffering_ahead(store):
    probe = sql.Statement("SELECT getSetting('read_in_order_use_buffering') AS v")
    assert b"".join(store._stream_text(probe, "CSV")).strip() in (b"false", b"0")
    # the ordinary read session keeps the engine's defaults
    assert store.query_table(probe).column("v").to_pylist() in ([True], [1])


def test_events_table_writes_small_compressed_blocks_and_060_reapplies(store):
    def engine_full() -> str:
        stmt = sql.Statement(
            "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = 'audit_events'",
            {"db": store.database},
        )
        return store.query_table(stmt).column("engine_full")[0].as_py()

    assert "max_compress_block_size = 131072" in engine_full()
    assert "min_compress_block_size = 16384" in engine_full()
    (m060,) = [m for m in migrations.load_migrations() if m.version == 60]
    for text in migrations.statements_for(m060, store.database):
        store.execute(sql.Statement(text))  # idempotent: a run cut short is simply repeated
    assert "max_compress_block_size = 131072" in engine_full()
    assert store.migrate() == []


def test_search_pages_over_many_parts_in_order_with_api_columns_only(store):
    # three inserts (three parts per partition), two months of partitions, three tenants
    spec = SyntheticSpec(rows=6_000, tenants=3, days=60, users_per_tenant=5, resources=40, addresses=30)
    store.generate_synthetic(spec, chunk_rows=2_000)
    tenant = "tenant-01"
    want = store.query_table(
        sql.Statement(
            f"SELECT toString(id) AS id, resource_id FROM {store.database}.audit_events"
            " WHERE tenant_id = {t:String} ORDER BY created_at DESC, id DESC",
            {"t": tenant},
        )
    ).to_pylist()
    assert len(want) == 2_000

    flt = EventFilter(tenant=tenant)
    got: list[dict] = []
    cursor = None
    while True:
        page = store.search(flt, 333, cursor)
        got.extend(page)
        if len(page) < 333:
            break
        last = page[-1]
        cursor = Cursor(dt.datetime.fromisoformat(last["created_at"].replace("Z", "+00:00")), last["id"])
    assert [r["id"] for r in got] == [r["id"] for r in want]
    assert all(tuple(r) == API_COLUMNS for r in got)
    assert {r["tenant_id"] for r in got} == {tenant}

    # a needle filter: every hit of one resource id, newest first, and nothing of other tenants
    resource = want[len(want) // 2]["resource_id"]
    hits = store.search(EventFilter(tenant=tenant, resource_id=resource), 1000)
    assert [r["id"] for r in hits] == [r["id"] for r in want if r["resource_id"] == resource]
    scoped = store.search(EventFilter(resource_id=resource, tenants=("tenant-02",)), 1000)
    assert scoped and {r["tenant_id"] for r in scoped} == {"tenant-02"}
    one = store.get_event(hits[0]["id"], (tenant,))
    assert one == hits[0]
    assert store.get_event(hits[0]["id"], ("tenant-02",)) is None


ODD = 'a/b "quoted" back\\slash tab\tnew\nline ü 😀 <b>&amp;</b> \x01'


def _odd_events(now: dt.datetime) -> list[AuditEvent]:
    out = []
    for i in range(9):
        out.append(
            AuditEvent(
                id=str(uuid.uuid4()),
                tenant_id=("acme", "globex")[i % 2],
                user_id=ODD if i == 3 else f"=user-{i}",
                action="update",
                resource_type="invoice/line",
                resource_id=f"inv/{i % 3}",
                event_name="audit.invoice.update",
                # two pairs share a timestamp: the id breaks the tie
                created_at=now - dt.timedelta(seconds=i // 2),
                received_at=now,
                changes='{"note":{"old":"x/y","new":"' + 'ü 😀 \\"q\\"' + '"}}' if i % 3 == 0 else "",
                ip_address="2001:db8::1" if i == 5 else "192.0.2.7",
                http_status=404 if i == 4 else 0,
                reason=ODD if i == 6 else "",
                attributes={"k/1": ODD, "empty": ""} if i == 2 else {},
                retain_until=dt.date.today() + dt.timedelta(days=30),
            )
        )
    return out


def test_api_pages_are_the_search_rows_as_engine_made_json(store):
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=123456)
    store.insert(events_to_table(_odd_events(now)))
    for flt in (
        EventFilter(),
        EventFilter(tenant="acme"),
        EventFilter(user=ODD),
        EventFilter(resource_id="inv/1", tenants=("globex",)),
        EventFilter(tenants=("nobody",), tenant="acme"),
    ):
        cursor, pages = None, 0
        while True:
            rows = store.search(flt, 2, cursor)
            page = store.search_page(flt, 2, cursor)
            assert json.loads(page.events_json) == rows
            assert page.count == len(rows)
            assert page.tenants == tuple(r["tenant_id"] for r in rows)
            pages += 1
            if len(rows) < 2:
                assert page.last is None or len(rows) == 1
                break
            last = rows[-1]
            cursor = Cursor(dt.datetime.fromisoformat(last["created_at"].replace("Z", "+00:00")), last["id"])
            assert page.last == cursor
            assert page.last.encode() == cursor.encode()
        assert pages <= 6
    (odd,) = json.loads(store.search_page(EventFilter(user=ODD), 10).events_json)
    assert odd["user_id"] == ODD and odd["http_status"] is None and odd["changes"]["note"]["old"] == "x/y"


def test_tenant_counts_are_count_and_tenants_in_one_scan(store):
    store.generate_synthetic(SyntheticSpec(rows=3_000, tenants=4, days=30))
    for flt in (
        EventFilter(),
        EventFilter(outcome="denied"),
        EventFilter(tenants=("tenant-01", "tenant-03")),
    ):
        counts = store.tenant_counts(flt)
        assert list(counts) == store.tenants(flt)
        assert sum(counts.values()) == store.count(flt)
        assert counts == {t: store.count(EventFilter(tenant=t, outcome=flt.outcome)) for t in counts}
    assert store.tenant_counts(EventFilter(tenant="tenant-01", tenants=("tenant-02",))) == {}


def test_the_engines_formula_guard_is_the_python_one(store):
    values = [
        "=1+2",
        "+x",
        "-",
        "@a",
        "\tq",
        "\rq",
        "ok",
        "",
        "a=b",
        "ü",
        "\n=x",
        "'=x",
        "==",
        "-\n",
        "\\=",
        "😀@",
    ]
    guard = sql.FORMULA_GUARD_SQL.format(cell="v")
    lc = sql.FORMULA_GUARD_SQL.format(cell="toLowCardinality(v)")
    stmt = sql.Statement(
        f"SELECT {guard} AS plain, {lc} AS low FROM (SELECT arrayJoin({{vals:Array(String)}}) AS v)",
        {"vals": values},
    )
    table = store.query_table(stmt)
    want = [csv_cell(v) for v in values]
    assert table.column("plain").to_pylist() == want
    assert [str(v) for v in table.column("low").to_pylist()] == want
    assert want[:6] == ["'=1+2", "'+x", "'-", "'@a", "'\tq", "'\rq"]
