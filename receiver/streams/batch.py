"""A batch of events on its way to a destination: the rows the engine read (each event already
formatted by the engine as an ``/api/events`` JSON line), in stored order per log, each log's
index range, and a stable id derived from exactly those ranges (a redelivered batch has the same
id, so a destination can drop the copy)."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa


class DeliveryError(Exception):
    """The destination did not accept the batch (retried with backoff)."""


def _ranges(table: pa.Table) -> dict[str, tuple[int, int]]:
    if not table.num_rows:
        return {}
    grouped = table.select(["log", "idx"]).group_by("log").aggregate([("idx", "min"), ("idx", "max")])
    return {str(r["log"]): (int(r["idx_min"]), int(r["idx_max"])) for r in grouped.to_pylist()}


@dataclass
class Batch:
    stream: str
    #: ``line`` (the event as JSON with its newline), ``log``, ``idx`` and, where a sink needs
    #: them (Parquet), the stored columns; ordered by log, then index
    table: pa.Table
    #: log -> (first index, last index) of this batch's events
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def from_table(cls, stream: str, table: pa.Table) -> Batch:
        return cls(stream, table, _ranges(table))

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def id(self) -> str:
        key = json.dumps([self.stream, sorted(self.ranges.items())], separators=(",", ":"))
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    def ndjson(self) -> bytes:
        """One event per line, keyed like /api/events: the engine's lines as one buffer, no
        Python object per event."""
        column = self.table.column("line").combine_chunks()
        if not len(column):
            return b""
        large = pa.types.is_large_string(column.type) or pa.types.is_large_binary(column.type)
        _, offsets_buffer, data = column.buffers()
        offsets = pa.Array.from_buffers(
            pa.int64() if large else pa.int32(), len(column) + 1, [None, offsets_buffer], offset=column.offset
        )
        start, end = offsets[0].as_py(), offsets[-1].as_py()
        return data.slice(start, end - start).to_pybytes()

    @functools.cached_property
    def events(self) -> list[dict[str, Any]]:
        """The events as dicts (the kinds that re-encode each event: HEC, OTLP, syslog)."""
        return [orjson.loads(line) for line in self.table.column("line").to_pylist()]
