"""A batch of events on its way to a destination: the rows the engine read (each event already
formatted by the engine as an ``/api/events`` JSON line), in stored order per log, each log's
index range, and a stable id derived from exactly those ranges (a redelivered batch has the same
id, so a destination can drop the copy)."""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from isal import igzip


@dataclass
class _Body:
    #: held while the body is made: a sibling stream asking at the same moment (they wake
    #: together on a shared read) waits for it instead of compressing the same lines again
    lock: threading.Lock = field(default_factory=threading.Lock)
    gzipped: bytes | None = None


#: per recent table (streams sharing a read, receiver/streams/shared.py, get the same table
#: object): its gzip body, made once, and its slices (:func:`pieces`)
_GZIPPED: dict[int, tuple[pa.Table, _Body]] = {}
_PIECES: dict[tuple[int, int], tuple[pa.Table, list[pa.Table]]] = {}
_RECENT_KEEP = 4
_recent_lock = threading.Lock()


def _recent(
    cache: dict[Any, tuple[pa.Table, Any]], key: Any, table: pa.Table, make: Callable[[], Any]
) -> Any:
    """The cache's value for ``table``, made by ``make`` the first time. Keyed by identity, each
    entry holds its table alive (an id is not reused while it is cached); the oldest go first."""
    with _recent_lock:
        entry = cache.get(key)
        if entry is None or entry[0] is not table:
            while len(cache) >= _RECENT_KEEP:
                cache.pop(next(iter(cache)))
            entry = cache[key] = (table, make())
        return entry[1]


def pieces(table: pa.Table, size: int) -> list[pa.Table]:
    """``table`` in slices of ``size`` rows. Streams that got the same table (a sibling's shared
    read) get the same slice objects, so each slice's gzip body is made once."""
    if table.num_rows <= size:
        return [table]
    return _recent(
        _PIECES,
        (id(table), size),
        table,
        lambda: [table.slice(at, size) for at in range(0, table.num_rows, size)],
    )


class DeliveryError(Exception):
    """The destination did not accept the batch (retried with backoff)."""


def _ranges(table: pa.Table) -> dict[str, tuple[int, int]]:
    """Each log's first and last index in the batch. The rows come in runs of one log (ordered
    by log, then index): min and max per run, merged per log (a hash aggregation per batch cost
    more than the rest of the batch's bookkeeping)."""
    if not table.num_rows:
        return {}
    runs = pc.run_end_encode(table.column("log").combine_chunks().cast(pa.string()))
    ends = runs.run_ends.to_numpy()
    starts = np.concatenate(([0], ends[:-1]))
    idx = table.column("idx").to_numpy()
    lows, highs = np.minimum.reduceat(idx, starts), np.maximum.reduceat(idx, starts)
    out: dict[str, tuple[int, int]] = {}
    for log, low, high in zip(runs.values.to_pylist(), lows.tolist(), highs.tolist(), strict=True):
        first, last = out.get(log, (low, high))
        out[log] = (min(first, low), max(last, high))
    return out


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
        return self._lines().to_pybytes()

    def _lines(self) -> pa.Buffer:
        """The lines' bytes where the engine's result holds them (no copy)."""
        column = self.table.column("line").combine_chunks()
        if not len(column):
            return pa.py_buffer(b"")
        large = pa.types.is_large_string(column.type) or pa.types.is_large_binary(column.type)
        _, offsets_buffer, data = column.buffers()
        offsets = pa.Array.from_buffers(
            pa.int64() if large else pa.int32(), len(column) + 1, [None, offsets_buffer], offset=column.offset
        )
        start, end = offsets[0].as_py(), offsets[-1].as_py()
        return data.slice(start, end - start)

    def gzipped(self) -> bytes:
        """:meth:`ndjson` gzipped (ISA-L level 1), made once per table however many streams send it."""
        entry = _recent(_GZIPPED, id(self.table), self.table, _Body)
        with entry.lock:
            if entry.gzipped is None:
                # straight from the Arrow buffer: a copy of a large batch's lines costs as much
                # as a third of the compression
                entry.gzipped = igzip.compress(memoryview(self._lines()), compresslevel=1, mtime=0)
            return entry.gzipped

    @functools.cached_property
    def events(self) -> list[dict[str, Any]]:
        """The events as dicts (the kinds that re-encode each event: HEC, OTLP, syslog)."""
        return [orjson.loads(line) for line in self.table.column("line").to_pylist()]
