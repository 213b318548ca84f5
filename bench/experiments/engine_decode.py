"""EXPERIMENT: what decoding OTLP in the embedded engine costs per statement and per event,
when the result must come back to Python as an Arrow table (the pipeline's contract).

    python -m bench.experiments.engine_decode

Measures, on the ingest bench's requests (512 records, 12 attributes):
1. the full decode + validate statement of ``otlp_decode_sql.py`` (every rule of validate.py in
   SQL): CPU of ``EXPLAIN`` alone (query analysis) and of a full run, per statement;
2. the same statement over 16 and 64 requests in one statement (length-delimited
   ``Protobuf``): CPU per statement and per event;
3. a minimal statement (decode + flatten to per-record columns, no validation) over 1, 4 and
   16 requests in one statement (length-delimited ``Protobuf``): CPU per statement and per event;
4. the same requests through the Python pipeline (events per CPU-second), for comparison.
Also checks that the full statement's rows equal the Python pipeline's on these requests.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
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

_MINIMAL = """
SELECT req, r.time_unix_nano AS t, r.observed_time_unix_nano AS o, r.event_name AS en, r.trace_id AS tr,
    r.span_id AS sp, r.body.value AS bk, r.body.string_value AS bs, r.attributes.key AS k,
    CAST(r.attributes.value.value, 'Array(UInt8)') AS vk, r.attributes.value.string_value AS vs,
    r.attributes.value.int_value AS vi, r.attributes.value.bool_value AS vb
FROM (
    SELECT rowNumberInAllBlocks() AS req,
        arrayFlatten(arrayMap(rl -> arrayFlatten(arrayMap(sl -> sl.log_records, rl.scope_logs)), resource_logs)) AS recs
    FROM file({path:String}, 'Protobuf', STRUCTURE)
) ARRAY JOIN recs AS r"""


def cpu_ms(fn, repeat: int = 3) -> float:
    c0 = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - c0) / repeat * 1000


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
        path = Path(tmp) / "request.pb"
        path.write_bytes(raws[0])
        now = dt.datetime.now(dt.timezone.utc)
        stmt = o.decode_statement(
            str(path),
            token_tenant=None,
            received_at_us=int(now.timestamp()) * 1_000_000 + now.microsecond,
            retain_default=365,
            retain_tenants={},
        )
        params = store._bind(stmt)  # noqa: SLF001
        table = session.query(stmt.sql, "ArrowTable", params=params)
        out["full_statement_chars"] = len(stmt.sql)
        out["full_analysis_ms_cpu"] = cpu_ms(
            lambda: session.query("EXPLAIN " + stmt.sql, "CSV", params=params)
        )
        out["full_run_ms_cpu_512_records"] = cpu_ms(
            lambda: session.query(stmt.sql, "ArrowTable", params=params)
        )
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

        for n in (16, 64):
            path.write_bytes(b"".join(_VarintBytes(len(r)) + r for r in raws[:n]))
            many = o.decode_statement(
                str(path),
                token_tenant=None,
                received_at_us=0,
                retain_default=365,
                retain_tenants={},
                input_format="Protobuf",
            )
            rows = session.query(many.sql, "ArrowTable", params=store._bind(many)).num_rows  # noqa: SLF001
            ms = cpu_ms(lambda m=many: session.query(m.sql, "ArrowTable", params=store._bind(m)), 2)  # noqa: SLF001
            out[f"full_{n}_requests_rows"] = rows
            out[f"full_{n}_requests_ms_cpu"] = ms
            out[f"full_{n}_requests_us_per_event"] = ms * 1000 / rows
        minimal = _MINIMAL.replace("STRUCTURE", o._q(o.STRUCTURE))
        for n in (1, 4, 16):
            path.write_bytes(b"".join(_VarintBytes(len(r)) + r for r in raws[:n]))
            session.query(minimal, "ArrowTable", params={"path": str(path)})
            ms = cpu_ms(lambda: session.query(minimal, "ArrowTable", params={"path": str(path)}))
            out[f"flatten_{n}_requests_ms_cpu"] = ms
            out[f"flatten_{n}_requests_us_per_event"] = ms * 1000 / (n * 512)
        parsed = [ExportLogsServiceRequest.FromString(r) for r in raws]
        c0 = time.process_time()
        for req in parsed[:16]:
            pipeline.run(req, OPEN, lambda _t: 365)
        out["python_pipeline_us_per_event"] = (time.process_time() - c0) / (16 * 512) * 1e6
        session.close()
        store.close()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
