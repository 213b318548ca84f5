"""EXPERIMENT: what decoding OTLP in the embedded engine costs per statement and per event,
when the result must come back to Python as an Arrow table (the pipeline's contract).

    python -m bench.experiments.engine_decode

Measures, on the ingest bench's requests (512 records, 12 attributes), CPU as the minimum of a
few runs (the machine is shared):
1. the full decode + validate statement of ``otlp_decode_sql.py`` (every rule of validate.py in
   SQL): its size (characters, function nodes in the analyzer's query tree), the CPU of
   ``EXPLAIN`` alone, of a run over no input (analysis + plan + pipeline: the per-statement
   cost) and of runs over 1, 16 and 64 requests in one statement (length-delimited
   ``Protobuf``), per statement and per event;
2. what analysis costs per function node: a synthetic statement of 200 and 800 ``concat``
   columns over a one-row subquery;
3. the floors: the engine's Protobuf reader alone (``sum(length(resource_logs))``), decode +
   flatten (``ARRAY JOIN``) + 4 columns back as Arrow, and the statement's record layers alone
   (decode, flatten, the mapped attributes looked up: what a SQL decoder leaving every rule to
   Python would run), per statement and at 16 and 64 requests;
4. the streaming shape: a ``Null`` table of the request structure with the full statement as a
   materialized view ``TO`` a Memory table, ``INSERT`` then ``SELECT`` back (does the view's
   query escape per-statement analysis? It is analysed again for every inserted block);
5. the same requests through the Python pipeline, and upb's ``FromString`` alone.
Also checks that the full statement's rows equal the Python pipeline's on these requests, and
its verdicts on a request of records each breaking one rule (the same reason, or FALLBACK).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.compute as pc
from google.protobuf.internal.encoder import _VarintBytes
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from bench.common import fresh_requests, template_request
from bench.experiments import otlp_decode_sql as o
from receiver import pipeline
from receiver.model import ARROW_SCHEMA
from receiver.pipeline.auth import OPEN
from receiver.store.chdb_store import ChdbStore

_FLAT = """
SELECT _req, r.time_unix_nano AS t, r.event_name AS en, r.attributes.key AS k, r.attributes.value.string_value AS vs
FROM (SELECT rowNumberInAllBlocks() AS _req, resource_logs FROM file({path:String}, 'Protobuf', STRUCTURE))
ARRAY JOIN resource_logs AS rl ARRAY JOIN rl.scope_logs AS sl ARRAY JOIN sl.log_records AS r"""
#: (attribute overrides, event name): one record each; None removes the attribute
_MIXED: list[tuple[dict[str, object], str]] = [
    ({}, "audit.document.read"),
    ({"audit.event.id": None}, "audit.document.read"),
    ({"audit.event.id": "nope"}, "audit.document.read"),
    ({"audit.event.id": 12345}, "audit.document.read"),
    ({"audit.tenant.id": None}, "audit.document.read"),
    ({"enduser.id": None}, "audit.document.read"),
    ({"audit.action": "Bad Verb"}, "audit.document.read"),
    ({"audit.action": ""}, "audit.document.read"),
    ({"audit.outcome": "maybe"}, "audit.document.read"),
    ({"audit.actor.type": "X-y"}, "audit.document.read"),
    ({"audit.resource.type": None}, "audit.document.read"),
    ({"audit.changes": 5}, "audit.document.read"),
    ({"audit.changes": "[1]"}, "audit.document.read"),
    ({"audit.changes": '{"a":{"old":1,"new":2}}'}, "audit.document.read"),
    ({"http.response.status_code": 404, "http.request.method": "get"}, "audit.document.read"),
    ({"x": 1.5, "flag": True}, "audit.document.read"),
    ({}, "not.audit"),
]


def _mixed_request() -> ExportLogsServiceRequest:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    for i, (overrides, name) in enumerate(_MIXED):
        attrs: dict[str, object] = {
            "audit.event.id": f"{i:08x}-0000-4000-8000-000000000001",
            "audit.tenant.id": "acme",
            "enduser.id": "alice",
            "audit.action": "read",
            "audit.resource.type": "document",
        }
        attrs.update(overrides)
        record = records.add(time_unix_nano=time.time_ns(), event_name=name)
        for key, value in attrs.items():
            if value is None:
                continue
            kind = {bool: "bool_value", int: "int_value", float: "double_value"}.get(
                type(value), "string_value"
            )
            record.attributes.append(KeyValue(key=key, value=AnyValue(**{kind: value})))
    return request


_DECODE = "SELECT sum(length(resource_logs)) FROM file({path:String}, 'Protobuf', STRUCTURE)"


def _view_statement(sql: str, source: str, table: str) -> str:
    """The full statement with constants for its parameters, reading ``table``: a view's query
    cannot take query parameters."""
    sql = sql[: sql.rindex("SETTINGS")].replace(source, table)
    for name, value in (
        ("{received_at:Int64}", "0"),
        ("{retain_keys:Array(String)}", "CAST([], 'Array(String)')"),
        ("{retain_values:Array(UInt32)}", "CAST([], 'Array(UInt32)')"),
        ("{retain_default:UInt32}", "365"),
    ):
        sql = sql.replace(name, value)
    return sql


def cpu_ms(fn: Callable[[], object], repeat: int = 3) -> float:
    """The least CPU of ``repeat`` runs after a warm-up run, in ms."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        c0 = time.process_time()
        fn()
        best = min(best, time.process_time() - c0)
    return best * 1000


def main() -> int:
    template, offsets = template_request()
    raws = fresh_requests(template, offsets, 64)
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="otel-audit-engine-") as tmp:
        store = ChdbStore(Path(tmp) / "data")
        from chdb import session as chdb_session

        proto = o.install_proto(Path(tmp) / "schemas")
        session = chdb_session.Session(store.path)
        session.query(f"SET format_schema = '{proto}:{o.PROTO_MESSAGE}'")
        session.query("SET input_format_protobuf_oneof_presence = 1")

        def write(n: int) -> str:
            path = Path(tmp) / f"requests-{n}.pb"
            path.write_bytes(b"".join(_VarintBytes(len(r)) + r for r in raws[:n]))
            return str(path)

        def full(path: str, fmt: str = "Protobuf", received_at_us: int = 0):  # noqa: ANN202
            stmt = o.decode_statement(
                path,
                token_tenant=None,
                received_at_us=received_at_us,
                retain_default=365,
                retain_tenants={},
                input_format=fmt,
            )
            return stmt.sql, store._bind(stmt)  # noqa: SLF001

        single = Path(tmp) / "request.pb"
        single.write_bytes(raws[0])
        now = dt.datetime.now(dt.timezone.utc)
        sql, params = full(str(single), "ProtobufSingle", int(now.timestamp()) * 1_000_000 + now.microsecond)
        table = session.query(sql, "ArrowTable", params=params)
        py = pipeline.run(ExportLogsServiceRequest.FromString(raws[0]), OPEN, lambda _t: 365).table
        engine = (
            table.filter(pc.equal(table.column("_reason"), "")).select(ARROW_SCHEMA.names).cast(ARROW_SCHEMA)
        )
        same = [
            name
            for name in ARROW_SCHEMA.names
            if name != "received_at" and engine.column(name).equals(py.column(name))
        ]
        out["columns_equal_to_python"] = f"{len(same)}/{len(ARROW_SCHEMA.names) - 1}"
        out["columns_different"] = [n for n in ARROW_SCHEMA.names if n not in same and n != "received_at"]

        mixed = _mixed_request()
        single.write_bytes(mixed.SerializeToString())
        sql, params = full(str(single), "ProtobufSingle")
        verdicts = session.query(sql, "ArrowTable", params=params).column("_reason").to_pylist()
        result = pipeline.run(mixed, OPEN, lambda _t: 365)
        wanted = {int(r.split(":")[0].split()[1]): r.split(": ", 1)[1] for r in result.reasons}
        out["mixed_records"] = len(verdicts)
        out["mixed_fallbacks"] = [i for i, v in enumerate(verdicts) if v == o.FALLBACK]
        out["mixed_reasons_different"] = [
            i for i, v in enumerate(verdicts) if v != o.FALLBACK and v != wanted.get(i, "")
        ]

        sql, params = full(write(0))
        tree = session.query("EXPLAIN QUERY TREE " + sql, "CSV", params=params).bytes().decode()
        out["full_statement_chars"] = len(sql)
        out["full_function_nodes"] = tree.count("FUNCTION id:")
        out["full_explain_ms_cpu"] = cpu_ms(lambda: session.query("EXPLAIN " + sql, "CSV", params=params), 5)
        out["full_empty_input_ms_cpu"] = cpu_ms(lambda: session.query(sql, "ArrowTable", params=params), 5)
        for n in (1, 16, 64):
            sql_n, params_n = full(write(n))
            ms = cpu_ms(lambda s=sql_n, p=params_n: session.query(s, "ArrowTable", params=p))
            out[f"full_{n}_requests_ms_cpu"] = round(ms, 1)
            out[f"full_{n}_requests_us_per_event"] = round(ms * 1000 / (n * 512), 2)

        for columns in (200, 800):
            synthetic = (
                "SELECT "
                + ", ".join(f"concat(s, '{i}') AS c{i}" for i in range(columns))
                + f" FROM (SELECT '' AS s) SETTINGS {o.SETTINGS}"
            )
            ms = cpu_ms(lambda s=synthetic: session.query(s, "CSV"))
            out[f"synthetic_{columns}_concat_us_per_function"] = round(ms * 1000 / columns, 1)

        structure = o._q(o.STRUCTURE)  # noqa: SLF001
        lookups = f"SELECT * FROM ({o._record_layers('Protobuf')}) SETTINGS {o.SETTINGS}"  # noqa: SLF001
        out["lookups_empty_input_ms_cpu"] = cpu_ms(
            lambda: session.query(lookups, "ArrowTable", params={"path": write(0)}), 5
        )
        for label, query, fmt in (
            ("decode", _DECODE, "CSV"),
            ("flatten", _FLAT, "ArrowTable"),
            ("lookups", lookups, "ArrowTable"),
        ):
            query = query.replace("STRUCTURE", structure)
            for n in (16, 64):
                path_n = write(n)
                ms = cpu_ms(lambda q=query, p=path_n, f=fmt: session.query(q, f, params={"path": p}))
                out[f"{label}_{n}_requests_us_per_event"] = round(ms * 1000 / (n * 512), 2)

        for setting in o.SETTINGS.split(","):
            session.query("SET " + setting.strip())
        view = _view_statement(full("")[0], f"file({{path:String}}, 'Protobuf', {structure})", "engine_x.raw")
        session.query("CREATE DATABASE IF NOT EXISTS engine_x")
        session.query(f"CREATE TABLE engine_x.raw ({o.STRUCTURE}) ENGINE = Null")
        session.query(f"CREATE TABLE engine_x.out ENGINE = Memory AS {view}")
        session.query(f"CREATE MATERIALIZED VIEW engine_x.mv TO engine_x.out AS {view}")
        copy = f"INSERT INTO engine_x.raw SELECT * FROM file({{path:String}}, 'Protobuf', {structure})"

        def via_view(path: str) -> None:
            session.query(copy, "CSV", params={"path": path})
            session.query("SELECT * FROM engine_x.out ORDER BY _req, _idx", "ArrowTable")
            session.query("TRUNCATE TABLE engine_x.out")

        for n in (1, 16):
            path_n = write(n)
            ms = cpu_ms(lambda p=path_n: via_view(p))
            out[f"view_{n}_requests_ms_cpu"] = round(ms, 1)
            out[f"view_{n}_requests_us_per_event"] = round(ms * 1000 / (n * 512), 2)

        best = float("inf")
        for _ in range(3):
            c0 = time.process_time()
            parsed = [ExportLogsServiceRequest.FromString(r) for r in raws[:16]]
            best = min(best, time.process_time() - c0)
        out["upb_parse_us_per_event"] = round(best / (16 * 512) * 1e6, 2)
        best = float("inf")
        for _ in range(3):
            c0 = time.process_time()
            for req in parsed:
                pipeline.run(req, OPEN, lambda _t: 365)
            best = min(best, time.process_time() - c0)
        out["python_pipeline_us_per_event"] = round(best / (16 * 512) * 1e6, 2)
        session.close()
        store.close()
    print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in out.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
