"""SPEC section 8's ``/api/stats``: total, histogram and facets of a search, in three queries."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import pyarrow as pa

from receiver.filters import EventFilter
from receiver.model import iso_utc
from receiver.store import sql

UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
MAX_BUCKETS = 1000
DEFAULT_BUCKETS = 60
FACET_TOP = 10


class _Queries(Protocol):
    database: str

    def _query_arrow(self, statement: sql.Statement) -> pa.Table: ...


def _micros(value: dt.datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def empty_stats() -> dict[str, Any]:
    return {"total": 0, "histogram": [], "facets": {c: [] for c in sql.FACET_COLUMNS}}


def stats_report(store: _Queries, flt: EventFilter, buckets: int) -> dict[str, Any]:
    if flt.visible_nothing():
        return empty_stats()
    first = store._query_arrow(sql.stats_range(store.database, flt)).to_pylist()[0]
    total = int(first["n"])
    if total == 0 and (flt.since is None or flt.until is None):
        return empty_stats()
    # the histogram spans the asked-for range; an open end takes the data's own first/last event
    start_us = _micros(flt.since) if flt.since else int(first["first_us"])
    end_us = _micros(flt.until) if flt.until else int(first["last_us"]) + 1
    width_us = max(1, -(-(end_us - start_us) // buckets))
    counts = [0] * buckets
    if total:
        table = store._query_arrow(sql.histogram(store.database, flt, start_us, width_us))
        for bucket, n in zip(table.column("bucket").to_pylist(), table.column("n").to_pylist(), strict=True):
            if 0 <= bucket < buckets:
                counts[int(bucket)] += int(n)
    histogram = [
        {"start": iso_utc(_EPOCH + dt.timedelta(microseconds=start_us + i * width_us)), "count": n}
        for i, n in enumerate(counts)
    ]
    facets: dict[str, list[dict[str, Any]]] = {c: [] for c in sql.FACET_COLUMNS}
    if total:
        for row in store._query_arrow(sql.facets(store.database, flt, FACET_TOP)).to_pylist():
            facets[row["facet"]].append({"value": row["value"], "count": int(row["n"])})
    return {
        "total": total,
        "bucket_seconds": width_us / 1_000_000,
        "histogram": histogram,
        "facets": facets,
    }
