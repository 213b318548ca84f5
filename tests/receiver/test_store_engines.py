"""One store test suite, run on every engine: chDB's own API, clickhouse-connect (over chDB
here, over HTTP to a live server when OTEL_AUDIT_TEST_CLICKHOUSE_URL is set)."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from receiver.filters import Cursor, EventFilter
from receiver.formats import csv_lines
from receiver.model import AuditEvent, events_to_table
from receiver.store import migrations, sql
from receiver.store.base import SqlStore
from receiver.store.chdb_store import ChdbStore
from receiver.store.clickhouse_store import ClickHouseStore

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=654321)
TRICKY = "C:\\new\\table\t'quoted'\nline"


def http_endpoint_store(chdb_root, db: str) -> ClickHouseStore:
    """The server engine reading over HTTP through the read-only SQL endpoint, with
    clickhouse-connect's HTTP client; its writes (DDL, inserts) go through chDB, since the
    endpoint refuses them: every read path of the store (and of code built on it) runs over
    HTTP, end to end."""
    import clickhouse_connect

    from receiver.chhttp import start_sql_endpoint
    from receiver.config import SqlEndpoint

    writer = ChdbStore(chdb_root, database=db)
    cfg = SqlEndpoint(
        listen="127.0.0.1:0", users=[{"user": "reader", "password": "reader-password-1", "tenants": ["*"]}]
    )
    endpoint = start_sql_endpoint(writer, cfg)
    client = clickhouse_connect.get_client(
        host="127.0.0.1", port=endpoint.port, username="reader", password="reader-password-1", database=db
    )
    reader = ClickHouseStore(f"clickhouse://127.0.0.1:{endpoint.port}/{db}", client=client, migrate=False)
    reader._command = writer._command  # type: ignore[method-assign]
    reader._insert_arrow = writer._insert_arrow  # type: ignore[method-assign]
    close_reader = reader.close

    def close() -> None:
        close_reader()
        endpoint.stop()
        writer.close()

    reader.close = close  # type: ignore[method-assign]
    return reader


@pytest.fixture(params=["chdb", "clickhouse-connect-chdb", "http-readonly-endpoint", "clickhouse-live"])
def engine_store(request: pytest.FixtureRequest, chdb_root) -> Iterator[SqlStore]:
    db = f"e_{uuid.uuid4().hex[:10]}"
    if request.param == "http-readonly-endpoint":
        store: SqlStore = http_endpoint_store(chdb_root, db)
    elif request.param == "chdb":
        store: SqlStore = ChdbStore(chdb_root, database=db)
    elif request.param == "clickhouse-connect-chdb":
        import clickhouse_connect

        store = ClickHouseStore(
            f"clickhouse://localhost/{db}",
            client=clickhouse_connect.get_client(interface="chdb", path=str(chdb_root)),
        )
    else:
        url = os.environ.get("OTEL_AUDIT_TEST_CLICKHOUSE_URL")
        if not url:
            pytest.skip("OTEL_AUDIT_TEST_CLICKHOUSE_URL not set: no live ClickHouse server")
        store = ClickHouseStore(url.rstrip("/") + "/" + db if url.count("/") < 3 else url)
    yield store
    store.close()


def make_events() -> list[AuditEvent]:
    events = []
    for i in range(30):
        events.append(
            AuditEvent(
                id=str(uuid.uuid4()),
                tenant_id=("acme", "globex", "initech")[i % 3],
                user_id=TRICKY if i == 7 else f"user-{i % 4}",
                action=("read", "update", "delete")[i % 3],
                outcome="denied" if i % 5 == 0 else "success",
                resource_type="document",
                resource_id=f"doc-{i % 6}",
                event_name="audit.document.read",
                created_at=NOW - dt.timedelta(minutes=i),
                received_at=NOW,
                ip_address=f"192.0.2.{i}",
                changes='{"title":{"new":"Budget 2027","old":"Budget"}}' if i == 11 else "",
                reason="needle in the reason" if i == 12 else "",
                attributes={"ticket": "HAYSTACK-needle"} if i == 13 else {"k": str(i)},
                retain_until=dt.date.today() + dt.timedelta(days=365),
            )
        )
    return events


def test_engine_round_trip_filters_scope_and_paging(engine_store: SqlStore):
    events = make_events()
    engine_store.insert(events_to_table(events))
    assert engine_store.count(EventFilter()) == 30
    # values with backslashes, tabs, quotes and newlines bind exactly
    (tricky,) = engine_store.search(EventFilter(user=TRICKY), 10)
    assert tricky["id"] == events[7].id and tricky["user_id"] == TRICKY
    assert {r["id"] for r in engine_store.search(EventFilter(q="NEEDLE"), 10)} == {
        events[12].id,
        events[13].id,
    }
    assert [r["id"] for r in engine_store.search(EventFilter(q="budget 2027"), 10)] == [events[11].id]
    # tenant scope: a filter for another tenant returns nothing, never data
    scoped = EventFilter(tenants=("acme",))
    assert {r["tenant_id"] for r in engine_store.search(scoped, 100)} == {"acme"}
    assert engine_store.search(EventFilter(tenant="globex", tenants=("acme",)), 100) == []
    assert engine_store.get_event(events[1].id, ("acme",)) is None
    assert engine_store.get_event(events[1].id, ("globex",))["id"] == events[1].id
    # keyset pages: newest first, no overlap, nothing missed
    got: list[str] = []
    cursor = None
    while True:
        page = engine_store.search(EventFilter(), 7, cursor)
        got += [r["id"] for r in page]
        if len(page) < 7:
            break
        last = page[-1]
        cursor = Cursor(dt.datetime.fromisoformat(last["created_at"].replace("Z", "+00:00")), last["id"])
    assert got == [e.id for e in events]
    window = EventFilter(since=NOW - dt.timedelta(minutes=10), until=NOW - dt.timedelta(minutes=5))
    assert engine_store.count(window) == 5
    assert engine_store.search(EventFilter(), 1)[0]["created_at"] == NOW.strftime("%Y-%m-%dT%H:%M:%S.654321Z")
    assert engine_store.existing_ids(["acme", "globex"], [events[0].id, events[1].id, str(uuid.uuid4())]) == {
        (events[0].tenant_id, events[0].id),
        (events[1].tenant_id, events[1].id),
    }
    # a big group commit's check: more ids than one bound-array chunk (and than the ~64 k where
    # one statement fell off a cliff), the stored ones among them found on every engine
    many = [str(uuid.uuid4()) for _ in range(70_000)]
    many[12_345], many[40_000], many[69_999] = events[3].id, events[4].id, events[2].id  # 2: initech
    assert engine_store.existing_ids(["acme", "globex"], many) == {
        (events[3].tenant_id, events[3].id),
        (events[4].tenant_id, events[4].id),
    }
    streamed = sum(batch.num_rows for batch in engine_store.iter_batches(EventFilter(outcome="denied")))
    assert streamed == 6
    # exports: CSV and JSON lines made by the engine, the same bytes as from the API's rows
    denied = sorted(
        engine_store.search(EventFilter(outcome="denied"), 100),
        key=lambda r: (r["tenant_id"], r["created_at"], r["id"]),
        reverse=True,  # export order: newest first, as on screen
    )
    csv_body = b"".join(engine_store.iter_csv(EventFilter(outcome="denied"))).decode()
    assert csv_body == "".join(csv_lines(denied, header=False))
    jsonl_body = b"".join(engine_store.iter_jsonl(EventFilter(outcome="denied"))).decode()
    assert [json.loads(line) for line in jsonl_body.splitlines()] == denied
    tricky = EventFilter(user=TRICKY)
    assert [
        json.loads(line)["user_id"]
        for line in b"".join(engine_store.iter_jsonl(tricky)).decode().splitlines()
    ] == [TRICKY]
    assert list(engine_store.iter_csv(EventFilter(tenant="acme", tenants=("globex",)))) == []
    assert engine_store.tenants(EventFilter(outcome="denied")) == ["acme", "globex", "initech"]


class RecordingClient:
    """Stands in for clickhouse-connect's Client to capture what ClickHouseStore sends."""

    def __init__(self, applied: list[migrations.Migration] | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.applied = applied or []

    def command(self, query: str, parameters: Any = None) -> None:
        self.calls.append((query, parameters))

    def query_arrow(self, query: str, parameters: Any = None) -> pa.Table:
        self.calls.append((query, parameters))
        if "schema_migrations" in query:
            return pa.table(
                {
                    "version": pa.array([m.version for m in self.applied], pa.uint32()),
                    "last_checksum": pa.array([m.checksum for m in self.applied], pa.string()),
                }
            )
        return pa.table({"stored_id": pa.array([], pa.string())})

    def close(self) -> None:
        pass


def test_server_engine_runs_the_same_ddl_and_queries_as_chdb():
    client = RecordingClient()
    ClickHouseStore("clickhouse://u:p@db.internal:8123/audit", client=client)
    ddl = [q for q, _ in client.calls if "schema_migrations" not in q]
    assert ddl == migrations.schema_statements("audit")
    recorded = [p["v"] for q, p in client.calls if q.startswith("INSERT INTO audit.schema_migrations")]
    assert recorded == [m.version for m in migrations.load_migrations()]
    flt = EventFilter(tenant="acme", user="alice", q="x", tenants=("acme",))
    expected = sql.search("audit", flt, 50, None)
    client.calls.clear()
    store = ClickHouseStore.__new__(ClickHouseStore)
    SqlStore.__init__(store, "audit")
    store._client = client
    store.retries = 0
    store.search(flt, 50)
    assert client.calls == [(expected.sql, expected.params)]
    assert "alice" not in expected.sql and "{f_user_eq:String}" in expected.sql


def test_an_up_to_date_schema_opens_without_ddl():
    """The service's ClickHouse user may only INSERT and SELECT (SPEC 6): opening a store whose
    schema is current must not issue a single CREATE or ALTER."""
    client = RecordingClient(applied=migrations.load_migrations())
    ClickHouseStore("clickhouse://otel_audit:p@db.internal:8123/audit", client=client)
    assert [q.split()[0] for q, _ in client.calls] == ["SELECT"]


def test_clickhouse_url_parsing():
    from receiver.store.clickhouse_store import connect_args, database_of

    args = connect_args(
        "clickhouses://ingest:p%40ss@ch.example:9440/auditdb?connect_timeout=5&verify=false"
        "&ca_cert=/etc/ssl/ca.pem&client_cert=/c.pem&client_cert_key=/k.pem&compress=zstd&max_threads=2"
    )
    assert (args["host"], args["port"], args["username"], args["password"], args["secure"]) == (
        "ch.example",
        9440,
        "ingest",
        "p@ss",
        True,
    )
    assert args["connect_timeout"] == 5 and args["verify"] is False and args["compress"] == "zstd"
    assert (args["ca_cert"], args["client_cert"], args["client_cert_key"]) == (
        "/etc/ssl/ca.pem",
        "/c.pem",
        "/k.pem",
    )
    # durability: never async inserts; unknown options are ClickHouse settings
    assert args["settings"] == {"async_insert": 0, "max_threads": "2"}
    cluster = connect_args("clickhouse://h/audit?cluster=prod&retries=5")
    assert cluster["settings"] == {
        "async_insert": 0,
        "distributed_foreground_insert": 1,
        "insert_quorum": "auto",
    }
    assert "cluster" not in cluster and "retries" not in cluster and cluster["port"] == 8123
    assert (
        database_of("clickhouse://h:8123/auditdb") == "auditdb" and database_of("clickhouse://h") == "audit"
    )


class FlakyClient(RecordingClient):
    """A server whose first answers fail like a dropped connection / an overloaded server;
    ``stored`` are the event ids it has nevertheless kept (``tenants``: each id's tenant)."""

    def __init__(self, failures: list[Exception], stored: set[str] | None = None) -> None:
        super().__init__()
        self.failures = failures
        self.stored = stored or set()
        self.tenants: dict[str, str] = {}
        self.inserts: list[tuple[list[str], dict[str, Any]]] = []

    def query_arrow(self, query: str, parameters: Any = None) -> pa.Table:
        if "stored_id" in query:
            found = sorted(self.stored & set(parameters["d_ids"]))
            return pa.table(
                {
                    "stored_tenant": pa.array([self.tenants.get(i, "acme") for i in found], pa.string()),
                    "stored_id": pa.array(found, pa.string()),
                }
            )
        return super().query_arrow(query, parameters)

    def insert_arrow(self, table: str, data: pa.Table, settings: dict[str, Any] | None = None) -> None:
        self.inserts.append((data.column("id").to_pylist(), dict(settings or {})))
        if self.failures:
            raise self.failures.pop(0)
        ids, tenants = data.column("id").to_pylist(), data.column("tenant_id").to_pylist()
        self.stored |= set(ids)
        self.tenants.update(zip(ids, tenants, strict=True))


def test_server_engine_retries_retryable_errors_without_storing_twice():
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    from receiver.store.base import StoreUnavailable

    events = make_events()[:3]
    table = events_to_table(events)
    ids = [e.id for e in events]
    client = FlakyClient([OperationalError("connection reset"), DatabaseError("code: 252, Too many parts")])
    store = ClickHouseStore("clickhouse://h/audit?retries=2", client=client, migrate=False)
    store.insert(table)
    assert [sent for sent, _ in client.inserts] == [ids, ids, ids] and client.stored == set(ids)
    assert len({s["insert_deduplication_token"] for _, s in client.inserts}) == 1  # same rows, same token
    # the failed INSERT had stored one partition's events: the retry sends only the others
    client = FlakyClient([OperationalError("answer lost")], stored={ids[0]})
    ClickHouseStore("clickhouse://h/audit", client=client, migrate=False).insert(table)
    assert [sent for sent, _ in client.inserts] == [ids, ids[1:]]
    # all of it had arrived: nothing is sent again
    client = FlakyClient([OperationalError("answer lost")], stored=set(ids))
    client.tenants = {e.id: e.tenant_id for e in events}
    ClickHouseStore("clickhouse://h/audit", client=client, migrate=False).insert(table)
    assert len(client.inserts) == 1
    # a permanent error is not retried; retries exhausted → StoreUnavailable (the writer NACKs)
    client = FlakyClient([DatabaseError("code: 27, Cannot parse input")])
    with pytest.raises(DatabaseError):
        ClickHouseStore("clickhouse://h/audit", client=client, migrate=False).insert(table)
    assert len(client.inserts) == 1
    client = FlakyClient([OperationalError("down")] * 2)
    with pytest.raises(StoreUnavailable):
        ClickHouseStore("clickhouse://h/audit?retries=1", client=client, migrate=False).insert(table)
