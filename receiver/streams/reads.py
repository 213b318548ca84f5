"""What a stream reads next, and how: up to about READ_EVENTS undelivered events a read (whole
batches); while catching up on one log, that log's next window of indexes (and the window after
it read ahead on a second thread); once caught up, only the logs this receiver committed to
(their sizes tell whether a batch is waiting, without a query), and every log's undelivered
events every FULL_READ_EVERY_SECONDS (logs other receivers write). Reads go through the
stream's shared read when siblings ask the same (receiver/streams/shared.py)."""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from receiver.store import streams_sql as q
from receiver.streams.config import Stream
from receiver.streams.heads import Heads, tenant_of
from receiver.streams.metrics import StreamMetrics
from receiver.streams.readahead import ReadAhead
from receiver.streams.shared import SharedReads

#: a caught-up runner with ``heads`` reads again when this receiver commits, and at least this
#: often (events of logs other receivers on the same ClickHouse server write)
FULL_READ_EVERY_SECONDS = 5.0
#: events one read takes at most when more wait (delivered in batch_size batches, each saved):
#: a query costs milliseconds whatever it returns, so small batches are read several at a time
READ_EVENTS = 10_000


class Reads:
    def __init__(
        self,
        store: Any,
        stream: Stream,
        cond: Any,
        columns: bool,
        metrics: StreamMetrics,
        heads: Heads | None = None,
        shared: SharedReads | None = None,
        asker: object = None,
    ) -> None:
        self.store = store
        self.stream = stream
        self.cond = cond
        #: the sink writes the stored columns (Parquet), not only the engine's JSON lines
        self.columns = columns
        self.metrics = metrics
        #: this receiver's commits (None: every read is a read of every log)
        self.heads = heads
        #: the read shared with streams of the same tenants, filter and format
        self.shared = shared
        #: who asks the shared read (a runner never gets back a result it took itself)
        self.asker = asker if asker is not None else self
        #: the log the last full read ended in (read next through its index window)
        self.current: str | None = None
        #: when a read of every log last left nothing undelivered: until FULL_READ_EVERY_SECONDS
        #: later, only the logs this receiver committed to since then can hold new events
        self.general_at = float("-inf")
        self.was_general = False
        self.window_was_full = False
        #: catching up: the next window of one log, read while the batches before it go
        self.ahead = ReadAhead(stream.name, self.query)

    @property
    def size(self) -> int:
        """Events one read takes at most: whole batches, about READ_EVENTS."""
        batch = self.stream.batch_size
        return batch * max(1, READ_EVENTS // batch)

    def reset(self) -> None:
        """Positions were reloaded: forget the window and the read ahead, read every log next."""
        self.current = None
        self.ahead.drop()
        self.general_at = float("-inf")

    def read(self, positions: dict[str, int], probe: bool = False) -> Any:
        """The next read's rows. While catching up on one log (the last read was full), its
        next indexes first: a read the seq index keeps to a few granules. When that window does
        not fill a read, the general read (every log's undelivered events, which scans the logs'
        index columns) decides. ``probe``: only each row's log and index."""
        db, size = self.store.database, self.size
        if self.current is not None:
            log_name = self.current
            start = positions.get(log_name, 0)
            table = self.query(
                q.next_batch(
                    db, self.cond, {log_name: start}, size, self.columns, window=(log_name, size), probe=probe
                )
            )
            if table.num_rows >= size:
                self.was_general = False
                self.window_was_full = True
                return table
        self.window_was_full = False
        targets = self.targets(positions)
        self.was_general = targets is None
        if targets is not None and not targets:  # committed to no log of this stream: nothing to ask
            return pa.table({"log": pa.array([], pa.string()), "idx": pa.array([], pa.uint64())})
        return self.query(
            q.next_batch(db, self.cond, positions, size, self.columns, probe=probe, only=targets)
        )

    def committed_count(self, positions: dict[str, int]) -> int | None:
        """How many events wait, from this receiver's commits (the logs' sizes past the
        positions), when that is exact: no filter, and only the logs committed here can hold
        new events (see :meth:`targets`). None: ask the store."""
        if self.stream.filter or self.heads is None:
            return None
        targets = self.targets(positions)
        if targets is None:
            return None
        sizes = self.heads.snapshot()
        self.was_general = False  # as a read of these logs only: no full read happened
        return sum(sizes[log_name] - start for log_name, start in targets.items())

    def targets(self, positions: dict[str, int]) -> dict[str, int] | None:
        """The logs this receiver committed to past the stream's positions, with their next
        index, when nothing else can be undelivered (a read of every log left nothing within
        FULL_READ_EVERY_SECONDS); None: read every log."""
        if self.heads is None or time.monotonic() - self.general_at >= FULL_READ_EVERY_SECONDS:
            return None
        every = "*" in self.stream.tenants
        targets: dict[str, int] = {}
        for log_name, size in self.heads.snapshot().items():
            start = positions.get(log_name, 0)
            tenant = tenant_of(log_name)
            if size > start and (every or tenant is None or tenant in self.stream.tenants):
                targets[log_name] = start
        return targets

    # -- read ahead ----------------------------------------------------------------------
    def read_ahead_after(self, table: Any) -> None:
        """A full read: start reading the window after its last log's last index, if worth it."""
        log_name = str(table.column("log")[-1].as_py())
        start = int(table.column("idx")[-1].as_py()) + 1  # where the next read goes once all is accepted
        if self._window_likely_full(log_name, start):
            size = self.size
            statement = q.next_batch(
                self.store.database, self.cond, {log_name: start}, size, self.columns, window=(log_name, size)
            )
            self.ahead.start(log_name, start, statement)

    def _window_likely_full(self, log_name: str, start: int) -> bool:
        """Is the window of ``log_name`` from ``start`` worth reading ahead? A log this receiver
        writes: only if its committed size already covers the window (a stream keeping up
        would read a partial window, and read again); another log: when no filter thins it
        out, or the read before was a full window of it."""
        end = start + self.size
        sizes = self.heads.snapshot() if self.heads is not None else {}
        if log_name in sizes:
            return sizes[log_name] >= end
        return not self.stream.filter or self.window_was_full

    def take_ahead(self, positions: dict[str, int]) -> Any:
        """The window read ahead if it starts at the log's stored position now and is full."""
        table = self.ahead.take(self.current, positions)
        if table is None:
            return None
        if table.num_rows < self.size:
            self.current = None  # the log's window is not full: the general read decides, not it again
            return None
        self.window_was_full = True
        self.ahead.used += 1
        return table

    def query(self, statement: Any) -> Any:
        if self.shared is not None:
            table, reused = self.shared.read(self.store, statement, self.asker)
        else:
            table, reused = self.store.query_table(statement), False
        self.metrics.reads.labels(self.stream.name, "shared" if reused else "queried").inc()
        return table
