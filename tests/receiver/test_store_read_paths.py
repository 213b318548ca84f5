"""The store's read paths after the issue 8 tuning: exports stream without the engine's
read-ahead buffers, the events table writes small compressed blocks (schema 060), and searches
read only the API's columns while keeping their order, pages and tenant scope."""

from __future__ import annotations

import datetime as dt

from receiver.filters import Cursor, EventFilter
from receiver.formats import csv_cell
from receiver.model import API_COLUMNS
from receiver.store import migrations, sql
from receiver.store.synthetic import SyntheticSpec


def test_export_streams_merge_parts_without_buffering_ahead(store):
    probe = sql.Statement(
        "SELECT getSetting('read_in_order_use_buffering') AS buffering, getSetting('max_block_size') AS block"
    )
    assert b"".join(store._stream_text(probe, "CSV")).strip() in (b"false,8192", b"0,8192")
    # the ordinary read session keeps the engine's defaults
    assert store.query_table(probe).to_pylist()[0]["buffering"] in (True, 1)
    assert store.query_table(probe).to_pylist()[0]["block"] > 8192


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
        # issue 13 item 12 (OWASP): after leading whitespace or invisible characters, full-width
        " =1+2",
        "\n=cmd",
        "\r\n@SUM(A1)",
        " \t-1",
        "\u00a0+1",
        "\u3000=1",
        "\u202e=1",
        "＝1+2",
        "＋x",
        " －1",
        "＠SUM(A1)",
        "  ",
        "a ＝b",
        "x＝",
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
    guarded = dict(zip(values, want, strict=True))
    for value in values[values.index(" =1+2") : values.index("  ")]:
        assert guarded[value] == "'" + value, value
    assert [guarded[v] for v in ("  ", "a ＝b", "x＝", "'=x", "ü")] == ["  ", "a ＝b", "x＝", "'=x", "ü"]
