"""The read-only ClickHouse-HTTP endpoint of ``serve``: clickhouse-connect over HTTP as the
client, hostile queries refused with ClickHouse-style errors and nothing written, per-query
limits, tenant scoping, and the protocol details clients rely on."""

from __future__ import annotations

import datetime as dt
import gzip
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from conftest import start_receiver

from receiver.model import AuditEvent, events_to_table
from receiver.server import Receiver
from receiver.store import sql
from receiver.store.chdb_store import ChdbStore

ADMIN = ("grafana", "grafana-password")
ACME = ("acme-grafana", "acme-password-1")
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _events() -> list[AuditEvent]:
    return [
        AuditEvent(
            id=str(uuid.uuid4()),
            tenant_id=("acme", "globex")[i % 2],
            user_id=f"user-{i % 5}",
            action="read",
            resource_type="document",
            resource_id=f"doc-{i}",
            event_name="audit.document.read",
            created_at=NOW - dt.timedelta(minutes=i),
            received_at=NOW,
            retain_until=dt.date.today() + dt.timedelta(days=30),
        )
        for i in range(300)
    ]


@pytest.fixture
def sql_receiver(store: ChdbStore) -> Iterator[Receiver]:
    store.insert(events_to_table(_events()))
    receiver = start_receiver(
        store,
        sql_endpoint={
            "listen": "127.0.0.1:0",
            "users": [
                {"user": ADMIN[0], "password": ADMIN[1], "tenants": ["*"]},
                {"user": ACME[0], "password": ACME[1], "tenants": ["acme"]},
            ],
            "max_execution_time": 2,
            "max_memory_usage": 64 << 20,
            "max_result_rows": 10_000,
        },
    )
    yield receiver
    receiver.stop_listeners()


def client_for(receiver: Receiver, store: ChdbStore, who: tuple[str, str]) -> Any:
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=receiver.sql_port, username=who[0], password=who[1], database=store.database
    )


def fingerprint(store: ChdbStore) -> tuple[Any, ...]:
    rows = store._query_arrow(
        sql.Statement(
            f"SELECT count() AS n, sum(cityHash64(id, tenant_id, user_id, resource_id)) AS h FROM {store.database}.audit_events"
            " WHERE resource_type != 'audit_log'"
        )
    ).to_pylist()[0]
    tables = store._query_arrow(
        sql.Statement(
            "SELECT count() AS t FROM system.tables WHERE database = {db:String}", {"db": store.database}
        )
    ).to_pylist()[0]
    return rows["n"], rows["h"], tables["t"]


def trail_events(store: ChdbStore) -> list[dict[str, Any]]:
    from receiver.filters import EventFilter

    return store.search(EventFilter(resource_type="audit_log"), 1000)


def hostile_queries(tmp: Path) -> dict[str, int]:
    return {
        "INSERT INTO audit_events (id, tenant_id) VALUES (generateUUIDv4(), 'x')": 164,
        "INSERT INTO audit_events SELECT * FROM audit_events": 164,
        "ALTER TABLE audit_events DELETE WHERE 1": 164,
        "ALTER TABLE audit_events UPDATE user_id = 'x' WHERE 1": 164,
        "DELETE FROM audit_events WHERE 1": 164,
        "TRUNCATE TABLE audit_events": 164,
        "DROP TABLE audit_events": 164,
        "CREATE TABLE x (a Int8) ENGINE = Memory": 164,
        "OPTIMIZE TABLE audit_events FINAL": 164,
        "SET readonly = 0": 164,
        "USE system": 164,
        "SYSTEM SHUTDOWN": 164,
        "KILL QUERY WHERE 1": 164,
        "EXPLAIN SELECT 1": 164,
        "SELECT 1; DROP TABLE audit_events": 62,
        "SELECT 1; INSERT INTO audit_events (id) VALUES (generateUUIDv4())": 62,
        "SELECT * FROM file('/etc/passwd', 'LineAsString')": 497,
        "SELECT file('/etc/passwd')": 497,
        "SELECT FILE('/etc/passwd')": 497,
        "SELECT * FROM url('http://127.0.0.1:9/', CSV, 'a String')": 497,
        "SELECT * FROM remote('127.0.0.1', system.one)": 497,
        "SELECT * FROM numbers(10)": 497,
        "SELECT * FROM audit_events AS e, file('/etc/hosts', 'LineAsString') AS f": 497,
        f"SELECT 1 INTO OUTFILE '{tmp}/out.csv'": 497,
        f"SELECT * FROM audit_events INTO OUTFILE '{tmp}/all.csv' TRUNCATE": 497,
        "SELECT * FROM audit_events SETTINGS readonly = 0": 164,
        "SELECT * FROM audit_events SETTINGS max_execution_time = 0, max_result_rows = 0": 164,
        "SELECT * FROM audit_events SETTINGS additional_table_filters = {}": 164,
        "SELECT * FROM system.users": 497,
        "SELECT * FROM system.query_log": 497,
        "SELECT * FROM system.processes": 497,
        "SELECT * FROM system.named_collections": 497,
        "SELECT * FROM system.zookeeper WHERE path = '/'": 497,
        "SELECT * FROM audit_events WHERE user_id IN (SELECT name FROM system.users)": 497,
        "WITH q AS (SELECT query FROM system.query_log) SELECT * FROM q": 497,
        "SELECT getSetting('additional_table_filters')": 497,
        "SELECT sleep(3)": 497,
        "SELECT dictGet('secrets', 'value', toUInt64(1))": 497,
        "SELECT joinGet('j', 'v', 1)": 497,
        "SELECT * FROM default.anything": 497,
        "SELECT * FROM audit_events_shadow": 497,
        # the right-hand side of IN names a table (issue 13 item 6)
        "SELECT 1 WHERE 'default' IN system.users": 497,
        "SELECT count() FROM audit_events WHERE user_id NOT IN system.users": 497,
        "SELECT 1 WHERE 'x' GLOBAL IN system.processes": 497,
        "SELECT 1 WHERE ('a', 'b') IN default.anything": 497,
        # functions: an allow-list, not a deny-list
        "SELECT hostName()": 497,
        "SELECT currentUser()": 497,
        "SELECT getServerPort('http_port')": 497,
        "SELECT filesystemAvailable()": 497,
        # metadata: other tenants' holds and retention live in the DDL; paths, sizes
        "SELECT engine_full FROM system.tables": 497,
        "SELECT create_table_query FROM system.tables": 497,
        "SELECT name, engine_full AS engine_full FROM system.tables": 497,
        "SELECT * FROM system.tables": 497,
        "SELECT t.* FROM system.tables AS t": 497,
        "SELECT COLUMNS('engine') FROM system.tables": 497,
        "SELECT data_path FROM system.databases": 497,
        "SELECT sum(total_rows) FROM system.tables": 497,
    }


def test_hostile_queries_are_refused_and_nothing_is_written(sql_receiver, store, tmp_path):
    client = client_for(sql_receiver, store, ADMIN)
    before = fingerprint(store)
    for query, code in hostile_queries(tmp_path).items():
        with pytest.raises(DatabaseError) as info:
            client.query(query)
        assert f"code: {code}" in str(info.value), (query, str(info.value)[:300])
        assert "DB::Exception" in str(info.value)
    assert fingerprint(store) == before
    assert list(tmp_path.iterdir()) == []  # INTO OUTFILE wrote nothing
    # every refusal is itself in the audit trail (only the trail's own events were added)
    trail = trail_events(store)
    assert len(trail) == len(hostile_queries(tmp_path))
    assert {(e["user_id"], e["event_name"]) for e in trail} == {("sql:grafana", "audit.audit_log.read")}
    assert {e["outcome"] for e in trail} == {"denied", "failure"}
    recorded = {e["attributes"]["audit.sql.query"].removesuffix("\n FORMAT Native") for e in trail}
    assert recorded == set(hostile_queries(tmp_path))  # clickhouse-connect appends the FORMAT
    # and the endpoint still answers
    assert client.query("SELECT count() FROM audit_events WHERE resource_type = 'document'").first_row == (
        300,
    )


def test_tables_named_by_in_are_checked_and_trailed(sql_receiver, store):
    """``x IN t`` reads table ``t``: a scoped user cannot reach a table without tenant rows
    that way, and a read of an audit table through IN is in the access trail."""
    acme = client_for(sql_receiver, store, ACME)
    with pytest.raises(DatabaseError, match="code: 497"):
        acme.query("SELECT (now(), 'x') IN retention_ttl")
    with pytest.raises(DatabaseError, match="code: 497"):
        acme.query("SELECT ('1', 'x', 'y', now()) IN schema_migrations")
    before = len(trail_events(store))
    everyone = client_for(sql_receiver, store, ADMIN)
    probe = (
        "SELECT ('acme', 1, 'r', 'a', toDateTime64('2020-01-01 00:00:00', 3, 'UTC')) IN legal_holds AS held"
    )
    assert everyone.query(probe).result_rows == [(0,)]
    after = trail_events(store)
    assert len(after) == before + 1
    read = [e for e in after if e["attributes"]["audit.sql.query"].startswith(probe)]
    assert read and read[0]["outcome"] == "success"


def test_metadata_shows_only_what_grafana_needs(sql_receiver, store):
    acme = client_for(sql_receiver, store, ACME)
    everyone = client_for(sql_receiver, store, ADMIN)
    # Grafana's plugin lists databases, tables and columns
    assert acme.query("SELECT name FROM system.databases").result_rows == [(store.database,)]
    acme_tables = {
        r[0]
        for r in acme.query("SELECT name FROM system.tables WHERE database = currentDatabase()").result_rows
    }
    assert "audit_events" in acme_tables
    # a scoped user sees only tables it may read (no retention spec, no migrations)
    assert not acme_tables & {"retention_ttl", "schema_migrations"}
    assert {"retention_ttl", "schema_migrations"} <= {
        r[0] for r in everyone.query("SELECT name FROM system.tables").result_rows
    }
    columns = acme.query(
        "SELECT name, type, is_in_primary_key FROM system.columns WHERE database = {db:String} AND table = 'audit_events'",
        parameters={"db": store.database},
    ).result_rows
    assert ("tenant_id", "LowCardinality(String)", 1) in columns
    assert acme.query("SELECT count(*) FROM system.tables").first_row[0] == len(acme_tables)


def test_settings_in_the_url_cannot_lift_limits(sql_receiver, store):
    url = f"http://127.0.0.1:{sql_receiver.sql_port}/"
    for name, value in (
        ("readonly", "0"),
        ("max_memory_usage", "0"),
        ("max_result_rows", "0"),
        ("additional_table_filters", "{}"),
    ):
        answer = httpx.post(url, params={name: value}, content="SELECT 1", auth=ACME)
        assert answer.status_code == 403 and answer.headers["X-ClickHouse-Exception-Code"] == "164", name
        assert answer.text.startswith(
            f"Code: 164. DB::Exception: Cannot modify '{name}' setting in readonly mode"
        )
    # a setting equal to the session's own is no change, and is accepted
    same = httpx.post(url, params={"max_result_rows": "10000"}, content="SELECT 1", auth=ACME)
    assert same.status_code == 200 and same.text == "1\n"
    # clickhouse-go (Grafana's plugin) sends its timeout as max_execution_time on every query:
    # accepted, but the session's own limit (2 s here) stays in force
    cross = "SELECT count() FROM audit_events AS a, audit_events AS b, audit_events AS c, audit_events AS d"
    started = time.monotonic()
    timed = httpx.post(url, params={"max_execution_time": "0"}, content=cross, auth=ACME, timeout=30)
    assert timed.headers["X-ClickHouse-Exception-Code"] == "159" and time.monotonic() - started < 10
    assert httpx.post(url, params={"max_execution_time": "65"}, content="SELECT 1", auth=ACME).text == "1\n"
    unknown = httpx.post(url, params={"no_such_setting": "1"}, content="SELECT 1", auth=ACME)
    assert unknown.status_code == 400 and unknown.headers["X-ClickHouse-Exception-Code"] == "115"


def test_per_query_time_memory_and_result_limits(sql_receiver, store):
    client = client_for(sql_receiver, store, ADMIN)
    with pytest.raises(DatabaseError) as info:  # 300^4 rows: stopped by max_execution_time = 2 s
        client.query(
            "SELECT count() FROM audit_events AS a, audit_events AS b, audit_events AS c, audit_events AS d"
        )
    assert "code: 159" in str(info.value)
    with pytest.raises(DatabaseError) as info:  # 90,000 × 1 MB strings: max_memory_usage = 64 MiB
        client.query(
            "SELECT groupArray(repeat(a.user_id, 1000000)) FROM audit_events AS a, audit_events AS b"
        )
    assert "code: 241" in str(info.value)
    with pytest.raises(DatabaseError) as info:  # 90,000 rows > max_result_rows = 10,000
        client.query("SELECT a.id FROM audit_events AS a, audit_events AS b")
    assert "code: 396" in str(info.value)
    assert client.query("SELECT 1").first_item == {"1": 1}  # the session survives


def test_a_tenant_scoped_user_sees_only_its_tenant(sql_receiver, store):
    acme = client_for(sql_receiver, store, ACME)
    assert acme.query("SELECT DISTINCT tenant_id FROM audit_events").result_rows == [("acme",)]
    assert acme.query("SELECT count() FROM audit_events WHERE tenant_id = 'globex'").first_row == (0,)
    assert acme.query(
        f"SELECT count() FROM {store.database}.audit_events WHERE resource_type = 'document'"
    ).first_row == (150,)
    assert acme.query(
        "SELECT count() FROM (SELECT * FROM audit_events UNION ALL SELECT * FROM audit_events) AS u "
        "WHERE u.tenant_id != 'acme'"
    ).first_row == (0,)
    joined = acme.query(
        "SELECT count() FROM audit_events AS a JOIN audit_events AS b ON a.id = b.id"
        " WHERE a.resource_type = 'document'"
    )
    assert joined.first_row == (150,)
    # metadata shows the audit database only
    assert {r[0] for r in acme.query("SELECT DISTINCT database FROM system.tables").result_rows} == {
        store.database
    }
    assert acme.query("SELECT name FROM system.databases").result_rows == [(store.database,)]
    everyone = client_for(sql_receiver, store, ADMIN)
    assert everyone.query("SELECT count() FROM audit_events WHERE resource_type = 'document'").first_row == (
        300,
    )
    # the store's own paths are not scoped by the endpoint's sessions
    assert fingerprint(store)[0] == 300


def test_protocol_details(sql_receiver, store, tmp_path):
    base = f"http://127.0.0.1:{sql_receiver.sql_port}"
    assert httpx.get(f"{base}/ping").text == "Ok.\n"
    assert httpx.get(f"{base}/", params={"query": "SELECT 1"}).status_code == 401
    bad = httpx.get(f"{base}/", params={"query": "SELECT 1"}, auth=(ADMIN[0], "wrong-password"))
    assert bad.status_code == 401 and bad.headers["X-ClickHouse-Exception-Code"] == "516"
    assert "Authentication failed" in bad.text
    # GET with query=, headers X-ClickHouse-User/Key, TabSeparated by default
    plain = httpx.get(
        f"{base}/",
        params={"query": "SELECT 1 AS one, 'a\tb' AS s"},
        headers={"X-ClickHouse-User": ADMIN[0], "X-ClickHouse-Key": ADMIN[1]},
    )
    assert plain.status_code == 200 and plain.text == "1\ta\\tb\n"
    assert plain.headers["X-ClickHouse-Format"] == "TabSeparated" and "X-ClickHouse-Query-Id" in plain.headers
    # POST body, bound parameters, a format, gzip when asked (as clickhouse-go asks for it)
    answer = httpx.post(
        f"{base}/",
        params={
            "default_format": "JSONEachRow",
            "param_u": "user-1",
            "enable_http_compression": "1",
            "query_id": "q-1",
            "database": store.database,
        },
        content="SELECT user_id, count() AS n FROM audit_events WHERE user_id = {u:String} GROUP BY user_id",
        headers={"Accept-Encoding": "gzip"},
        auth=ADMIN,
    )
    assert answer.status_code == 200 and answer.headers["Content-Encoding"] == "gzip"
    assert answer.headers["X-ClickHouse-Query-Id"] == "q-1"
    assert answer.text == '{"user_id":"user-1","n":60}\n'
    outfile = httpx.post(
        f"{base}/",
        content=f"SELECT * FROM audit_events INTO OUTFILE '{tmp_path}/x.parquet' FORMAT Parquet",
        auth=ADMIN,
    )
    assert outfile.status_code == 403 and outfile.headers["X-ClickHouse-Exception-Code"] == "497"
    assert not (tmp_path / "x.parquet").exists()
    multi = httpx.post(f"{base}/", content="SELECT 1;\nDROP TABLE audit_events", auth=ADMIN)
    assert multi.status_code == 400 and "Multi-statements are not allowed" in multi.text
    assert "formatQuerySingleLine" not in multi.text
    zipped = httpx.post(
        f"{base}/", content=gzip.compress(b"SELECT 2"), headers={"Content-Encoding": "gzip"}, auth=ADMIN
    )
    assert zipped.text == "2\n"
    # clickhouse-go's handshake query over TabSeparated (not the driver): revision 0
    hello = httpx.post(
        f"{base}/",
        params={"default_format": "TabSeparated"},
        content="SELECT displayName(), version(), revision(), timezone()",
        auth=ADMIN,
    )
    assert hello.status_code == 200 and hello.text.split("\t")[2] == "0"
    native = httpx.post(f"{base}/", params={"default_format": "Native"}, content="SELECT 1 AS a", auth=ADMIN)
    assert native.content == b"\x01\x01\x01a\x05UInt8\x01"
    wrong_db = httpx.post(f"{base}/", params={"database": "system"}, content="SELECT 1", auth=ADMIN)
    assert wrong_db.status_code == 404 and wrong_db.headers["X-ClickHouse-Exception-Code"] == "81"
    # the query and its parameters as multipart form fields (clickhouse-connect past 4 KiB of values)
    form = httpx.post(
        f"{base}/",
        files={"query": (None, "SELECT length({ids:Array(String)})"), "param_ids": (None, "['a','b\\'c']")},
        auth=ADMIN,
    )
    assert form.status_code == 200 and form.text == "2\n"
    external = httpx.post(
        f"{base}/",
        files={"query": (None, "SELECT 1"), "ext": ("ext.tsv", b"1\n", "text/plain")},
        auth=ADMIN,
    )
    assert external.status_code != 200 and external.headers["X-ClickHouse-Exception-Code"] == "1000"
    assert "form data" in external.text


def test_sql_endpoint_config_rules(store):
    from receiver.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="sql_endpoint.users"):
        load_config(None, sql_endpoint={"listen": "127.0.0.1:0", "users": []})
    with pytest.raises(ConfigError, match="password"):
        load_config(None, sql_endpoint={"users": [{"user": "g", "password": "short", "tenants": ["*"]}]})
    cfg = load_config(
        None, sql_endpoint={"users": [{"user": "g", "password": "long-enough-pw", "tenants": ["a"]}]}
    )
    assert cfg.sql_endpoint is not None and cfg.sql_endpoint.listen == "127.0.0.1:8123"
    from receiver.chhttp import start_sql_endpoint

    with pytest.raises(ConfigError, match="embedded"):
        start_sql_endpoint(object(), cfg.sql_endpoint)


def test_serve_runs_the_sql_endpoint_from_its_config(tmp_path):
    """`otel-audit serve --config` with an sql_endpoint: section, as a user would run it."""
    from conftest import ServeProcess, free_port

    port = free_port()
    config = tmp_path / "otel-audit.yaml"
    config.write_text(
        "sql_endpoint:\n"
        f"  listen: 127.0.0.1:{port}\n"
        "  users:\n"
        "    - {user: grafana, password: '${GRAFANA_SQL_PASSWORD}', tenants: ['*']}\n"
    )
    serve = ServeProcess(tmp_path / "data", ("--config", str(config)))
    serve.env = {"GRAFANA_SQL_PASSWORD": "a-long-password"}
    serve.start()
    try:
        deadline = time.monotonic() + 30  # the announcement follows /healthz by a moment
        while "read-only SQL endpoint" not in serve.log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        client = clickhouse_connect.get_client(
            host="127.0.0.1", port=port, username="grafana", password="a-long-password", database="audit"
        )
        assert client.query("SELECT count() FROM audit_events").first_row == (0,)
        with pytest.raises(DatabaseError, match="code: 164"):
            client.command("DROP TABLE audit_events")
        assert (
            f"read-only SQL endpoint (ClickHouse HTTP): http://127.0.0.1:{port}" in serve.log_path.read_text()
        )
    finally:
        assert serve.stop() == 0


def test_a_users_queries_run_concurrently_on_its_session_pool(sql_receiver, store):
    """Grafana runs a dashboard's panels at once: one slow panel must not stall the others."""
    import threading

    slow_done = threading.Event()

    def slow() -> None:
        with pytest.raises(DatabaseError):  # stopped by max_execution_time (2 s)
            client_for(sql_receiver, store, ADMIN).query(
                "SELECT count() FROM audit_events AS a, audit_events AS b, audit_events AS c, audit_events AS d"
            )
        slow_done.set()

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert client_for(sql_receiver, store, ADMIN).query(
        "SELECT count() FROM audit_events WHERE resource_type = 'document'"
    ).first_row == (300,)
    # the quick query answered while the slow one still ran (it runs until its 2 s limit)
    assert not slow_done.is_set(), time.monotonic() - started
    thread.join(10)


class NativeReader:
    """A port of clickhouse-go's Native block decoding (lib/proto/block.go ``Block.Decode``,
    ``decodeBlockInfo``) for the column types the handshake and ``SELECT 1`` use."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        assert len(chunk) == n, "short read"
        self.pos += n
        return chunk

    def string(self) -> str:
        return self.take(self.uvarint()).decode()

    def block(self, revision: int) -> dict[str, list[Any]]:
        import struct

        if revision > 0:
            self.uvarint(), self.take(1), self.uvarint(), self.take(4)
            assert self.uvarint() == 0
        columns, rows = self.uvarint(), self.uvarint()
        out: dict[str, list[Any]] = {}
        for _ in range(columns):
            name, type_name = self.string(), self.string()
            if revision >= 54454:
                assert self.take(1) == b"\x00", "custom serialization flag"
            if type_name == "String":
                out[name] = [self.string() for _ in range(rows)]
            else:
                fmt = {"UInt8": "<B", "UInt32": "<I", "UInt64": "<Q"}[type_name]
                size = struct.calcsize(fmt)
                out[name] = [struct.unpack(fmt, self.take(size))[0] for _ in range(rows)]
        return out


def test_clickhouse_go_handshake_then_native_answers(sql_receiver, store):
    """What clickhouse-go (Grafana's plugin, protocol http) does on connect: the handshake
    query with client_protocol_version=54460, decoded at that revision; then every answer at the
    revision the handshake returned, e.g. its ping ``SELECT 1`` (it checks the column is "1")."""
    base = f"http://127.0.0.1:{sql_receiver.sql_port}/"
    transport = {"default_format": "Native", "client_protocol_version": "54460", "database": store.database}
    hello = httpx.post(
        base,
        params=transport,
        content="SELECT displayName(), version(), revision(), timezone()",
        auth=ADMIN,
        headers={"Accept-Encoding": "gzip"},
    )
    assert hello.status_code == 200
    reader = NativeReader(hello.content)
    handshake = reader.block(revision=54460)
    assert reader.pos == len(hello.content)
    assert list(handshake) == ["displayName()", "version()", "revision()", "timezone()"]
    revision = handshake["revision()"][0]
    assert revision == 0 and re.match(r"\d+\.\d+", handshake["version()"][0]) and handshake["timezone()"][0]
    ping = httpx.post(base, params={**transport, "max_execution_time": "65"}, content="SELECT 1", auth=ADMIN)
    reader = NativeReader(ping.content)
    assert reader.block(revision) == {"1": [1]} and reader.pos == len(ping.content)
    rows = httpx.post(
        base,
        params={**transport, "param_t": "acme"},
        content="SELECT tenant_id, toUInt64(count()) AS n FROM audit_events WHERE tenant_id = {t:String} GROUP BY tenant_id",
        auth=ACME,
    )
    assert rows.headers["X-ClickHouse-Format"] == "Native"
    assert rows.content.startswith(b"\x02\x01\x09tenant_id\x16LowCardinality(String)")


def test_reads_of_audit_data_are_recorded_in_the_audit_trail(sql_receiver, store):
    """PCI DSS 10.2.1.3: access to the audit log is itself audited, before it is answered."""
    acme = client_for(sql_receiver, store, ACME)
    acme.query("SELECT 1")  # the handshake, pings, metadata: not audit data, not recorded
    acme.query("SELECT name FROM system.tables")
    assert trail_events(store) == []
    query = "SELECT user_id, count() FROM audit_events WHERE resource_type = 'document' GROUP BY user_id"
    assert len(acme.query(query).result_rows) == 5
    (event,) = trail_events(store)
    assert (event["event_name"], event["tenant_id"], event["user_id"], event["action"], event["outcome"]) == (
        "audit.audit_log.read",
        "acme",
        "sql:acme-grafana",
        "read",
        "success",
    )
    assert event["attributes"]["audit.sql.query"].startswith(query) and event["ip_address"] == "127.0.0.1"
    with pytest.raises(DatabaseError):
        acme.query("SELECT * FROM system.users")
    assert [e["outcome"] for e in trail_events(store)] == ["denied", "success"]
