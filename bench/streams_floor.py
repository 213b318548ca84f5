"""Bench: the floor of what two sibling webhook streams must add per event, next to ingest's
CPU per event measured in the same run (issue 18: ≤ 10 % at 20 k events/s with two streams).

    python -m bench.streams_floor [--rate 20000] [--seconds 30] [--batch 10000] [--rounds 7]

First ``otel-audit serve`` takes OTLP/gRPC at ``--rate`` events/s without streams: the
receiver's CPU per ingested event is the denominator. Then, in this process on a chDB store of
synthetic events, each piece a delivery cannot skip is timed alone at the stream batch size
(median of ``--rounds``, the process's CPU): the stream's read (its own statement: the engine
makes each event's ``/api/events`` JSON line), the same rows as Arrow columns without JSON, the
cheapest JSON the engine makes (``JSONEachRow``, native ISO dates; it cannot splice ``changes``
as an object, so it is a floor, not a substitute), Polars' NDJSON writer on the Arrow columns
when Polars is installed (it is not a dependency), igzip level 1 of the lines, a position insert
(what each batch cost each stream before positions went to a file), the position file's write
per batch and stream, and each stream's HMAC of the body. The floor is the cheapest JSON plus
the gzip (both made once for siblings) plus each stream's position file write and HMAC.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import resource
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from isal import igzip

from bench.common import report, verdict
from bench.streams_cpu import TARGET_ADDED, _phase
from receiver.model import API_COLUMNS
from receiver.store import open_store, synthetic
from receiver.store import streams_sql as q
from receiver.store.sql import EVENTS_TABLE, Statement
from receiver.streams.batch import Batch
from receiver.streams.positions import PositionFile

LOG = "otel-audit/bench/floor"
STREAMS = 2


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _per_event(work: Callable[[], Any], events: int, rounds: int) -> float:
    """Median CPU µs per event of ``work`` over ``rounds`` (after one warm-up)."""
    work()
    samples = []
    for _ in range(rounds):
        started = _cpu()
        work()
        samples.append((_cpu() - started) / events * 1e6)
    return statistics.median(samples)


def _columns(statement: Statement, settings: str = "") -> Statement:
    """The stream's rows (its statement's inner read), each API column as stored, no JSON."""
    sql = statement.sql
    inner = sql[sql.index("FROM (") + len("FROM (") : sql.rindex(") AS e")]
    columns = ", ".join("toString(e.id) AS id" if c == "id" else f"e.{c} AS {c}" for c in sorted(API_COLUMNS))
    return Statement(
        f"SELECT {columns} FROM ({inner}) AS e ORDER BY e.log, e.idx {settings}", statement.params
    )


def _polars(columns: pa.Table) -> Callable[[], Any] | None:
    try:
        import polars as pl  # noqa: PLC0415 - optional, not a dependency
    except ImportError:
        return None

    def write() -> bytes:
        table = columns
        for name in ("created_at", "received_at"):
            formatted = pc.strftime(table.column(name), format="%Y-%m-%dT%H:%M:%SZ")
            table = table.set_column(table.schema.get_field_index(name), name, formatted)
        return pl.from_arrow(table).write_ndjson().encode()

    return write


def floor(batch: int, rounds: int) -> dict[str, float]:
    """Each piece's CPU µs per event, at ``batch`` events a batch."""
    store = open_store(f"chdb://{tempfile.mkdtemp(prefix='streams-floor-')}")
    store.migrate()
    db = store.database
    store.execute(synthetic.insert_statement(db, synthetic.SyntheticSpec(rows=max(200_000, 2 * batch))))
    # one log of ``batch`` events, as a stream reading this receiver's log finds it
    logged = store.query_table(
        Statement(
            f"SELECT * REPLACE ({{log:String}} AS chain_id, toUInt64(rowNumberInAllBlocks()) AS seq)"
            f" FROM {db}.{EVENTS_TABLE} LIMIT {{n:UInt32}}",
            {"log": LOG, "n": batch},
        )
    )
    store.insert_into(EVENTS_TABLE, logged)
    statement = q.next_batch(db, q.condition({}, ("*",)), {LOG: 0}, batch, window=(LOG, batch))
    lines = store.query_table(statement)
    assert lines.num_rows == batch, lines.num_rows
    body = Batch.from_table("floor", lines)
    gzipped = igzip.compress(body.ndjson(), compresslevel=1, mtime=0)
    columns_statement = _columns(statement)
    columns = store.query_table(columns_statement)
    jsoneachrow = _columns(statement, "SETTINGS date_time_output_format = 'iso'")
    position_file = PositionFile(Path(tempfile.mkdtemp(prefix="streams-floor-positions-")), "floor")
    positions = q.state_table("floor", "position", [(LOG, str(batch))], synthetic.SyntheticSpec(rows=1).end)
    out = {
        "the stream's read (engine JSON lines)": _per_event(
            lambda: store.query_table(statement), batch, rounds
        ),
        "the same rows as Arrow columns, no JSON": _per_event(
            lambda: store.query_table(columns_statement), batch, rounds
        ),
        "the engine's cheapest JSON (JSONEachRow)": _per_event(
            lambda: _json_each_row(store, jsoneachrow), batch, rounds
        ),
        "igzip level 1 of the lines (once)": _per_event(
            lambda: igzip.compress(body.ndjson(), compresslevel=1, mtime=0), batch, rounds
        ),
        "a position insert per batch (each stream; before this round)": _per_event(
            lambda: store.insert_into(q.STATE_TABLE, positions), batch, rounds
        ),
        "the position file's write per batch (each stream)": _per_event(
            lambda: position_file.write({LOG: batch}, ["", 0]), batch, rounds
        ),
        "HMAC-SHA256 of the body (each stream)": _per_event(
            lambda: hmac.new(b"bench", gzipped, hashlib.sha256).hexdigest(), batch, rounds
        ),
    }
    polars_write = _polars(columns)
    if polars_write is not None:
        out["Polars NDJSON of the Arrow columns (dates by pyarrow)"] = _per_event(polars_write, batch, rounds)
    store.close()
    return out


def _json_each_row(store: Any, statement: Statement) -> bytes:
    """The statement's rows as the engine's ``JSONEachRow`` text (on the writer's session: the
    reader's is read-only, which refuses a query's ``SETTINGS``)."""
    return store._writer.query(statement.sql, "JSONEachRow", params=store._bind(statement)).bytes()  # noqa: SLF001


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    ingest = _phase(args.rate, args.seconds, [], [0])
    ingest_us = ingest["cpu_s"] / max(1, ingest["events"]) * 1e6
    pieces = floor(args.batch, args.rounds)
    json_floor = min(v for k, v in pieces.items() if "JSON" in k and "Arrow columns, no" not in k)
    least = (
        json_floor
        + pieces["igzip level 1 of the lines (once)"]
        + STREAMS * pieces["the position file's write per batch (each stream)"]
        + STREAMS * pieces["HMAC-SHA256 of the body (each stream)"]
    )
    share = least / ingest_us
    rows = [
        (
            "ingest without streams, same run",
            f"{ingest['events']:,} events, {ingest_us:.1f} µs of receiver CPU each",
        ),
        *[(name, f"{value:.2f} µs/event") for name, value in pieces.items()],
        (
            f"floor for {STREAMS} sibling webhook streams (cheapest JSON + gzip + {STREAMS}× file write and HMAC)",
            f"{least:.2f} µs/event = {share:+.1%} of ingest (target ≤ {TARGET_ADDED:.0%}: "
            f"{verdict(share, TARGET_ADDED, False)}); the target's budget is {TARGET_ADDED * ingest_us:.2f} µs",
        ),
    ]
    report(
        "streams_floor",
        rows,
        {"rate": args.rate, "batch": args.batch, "ingest_us": ingest_us, "pieces": pieces, "floor_us": least},
    )


if __name__ == "__main__":
    main()
