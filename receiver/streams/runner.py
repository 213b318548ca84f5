"""One stream's delivery loop, on the receiver holding the stream's lease: read the next batch
from the stream's positions (per log, the next index to deliver), send it until the destination
accepts it (exponential backoff with jitter), then store the new positions. A crash between the
two resends that one batch (same events, same batch id): at least once, in order per log.

Leases: each receiver claims the current term (``lease_seconds``) of each stream in
``stream_state``; the earliest claim not released leads. A receiver that stops releases its term,
so a restart takes over at once; after a kill -9 the next term (at most ``lease_seconds``) does.
A receiver that leads reloads the positions from the store, so nothing depends on who led before.

Prefetch: while catching up on one log (full batches), the next window of that log is read on a
second thread while the current batch is compressed and sent. It is used only once the batch
before it was accepted and its position stored, and only if that position is where the window
starts; a failure, a replay, a new lead or a restart leaves it unused (it is only memory).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from receiver.store import streams_sql as q
from receiver.streams.batch import Batch, DeliveryError, pieces
from receiver.streams.bookkeeping import Bookkeeping
from receiver.streams.config import Stream
from receiver.streams.heads import Heads, tenant_of
from receiver.streams.lag import Lag, Progress
from receiver.streams.metrics import StreamMetrics
from receiver.streams.positions import PositionFile
from receiver.streams.readahead import ReadAhead
from receiver.streams.shared import SharedReads
from receiver.streams.sinks import Sink, build_sink
from receiver.writer import name_os_thread

log = logging.getLogger("otel_audit.streams")
UTC = dt.timezone.utc
#: how often an idle or busy runner looks for a replay made by another receiver
MARKER_EVERY_SECONDS = 2.0
#: a caught-up runner with ``heads`` reads again when this receiver commits, and at least this
#: often (events of logs other receivers on the same ClickHouse server write)
FULL_READ_EVERY_SECONDS = 5.0
#: events one read takes at most when more wait (delivered in batch_size batches, each saved):
#: a query costs milliseconds whatever it returns, so small batches are read several at a time
READ_EVENTS = 10_000


def backoff(stream: Stream, attempts: int) -> float:
    """Seconds before the next attempt: initial × 2^(n-1), capped, times a jitter in [0.5, 1]."""
    delay = min(stream.retry_max_seconds, stream.retry_initial_seconds * 2.0 ** max(0, attempts - 1))
    return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


class Runner:
    def __init__(
        self,
        store: Any,
        stream: Stream,
        metrics: StreamMetrics,
        holder: str,
        sink: Sink | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC),
        on_backlog: Callable[[Runner], object] | None = None,
        heads: Heads | None = None,
        shared: SharedReads | None = None,
        position_file: PositionFile | None = None,
    ) -> None:
        self.store = store
        #: the lease, the positions (the store's, and a position file's) and the replay marker
        self.book = Bookkeeping(store, stream.name, stream.lease_seconds, holder, clock, position_file)
        self.position_file = position_file
        #: this receiver's commits (None: poll every poll_seconds, as without a writer)
        self.heads = heads
        #: the read shared with streams of the same tenants, filter and format
        self.shared = shared
        #: heads' version at the last read that left nothing undelivered (None: not caught up)
        self._idle_version: int | None = None
        self._idle_at = 0.0
        #: when a read of every log last left nothing undelivered: until FULL_READ_EVERY_SECONDS
        #: later, only the logs this receiver committed to since then can hold new events
        self._general_at = float("-inf")
        self._read_was_general = False
        self._read_started = 0.0
        self.stream = stream
        self.metrics = metrics
        self.holder = holder
        self.clock = clock
        self.sink = sink if sink is not None else build_sink(stream)
        self.cond = q.condition(stream.filter, stream.tenants)
        #: the sink writes the stored columns (Parquet), not only the engine's JSON lines
        self.columns = bool(getattr(self.sink, "wants_columns", False))
        self.progress = Progress()
        #: the lag and backlog; ``on_backlog`` is called (on the stream's thread) when the
        #: undelivered events go over backlog_limit
        self.lags = Lag(
            store,
            stream,
            self.cond,
            metrics,
            self.progress,
            clock,
            (lambda: on_backlog(self)) if on_backlog is not None else None,
        )
        self.positions: dict[str, int] = {}
        self.leading = False
        self._reset_seen: tuple[Any, int] = (None, 0)
        self._marker_at = 0.0
        #: the log the last full batch ended in (read next through its index window)
        self._current: str | None = None
        #: set (under ``lock``) by a replay through this receiver: reload the positions
        self.replayed = False
        self._waiting_since: float | None = None
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: catching up: the next window of one log, read while the batch before it goes
        self.ahead = ReadAhead(stream.name, self._query)
        self._window_was_full = False

    # -- bookkeeping (receiver/streams/bookkeeping.py) ------------------------------------
    def load_positions(self) -> dict[str, int]:
        """The stream's positions: the store's, or per log the later of the store's and the
        position file's (when the file was written since the last replay)."""
        return self.book.load()[1]

    def _save(self, batch: Batch) -> None:
        moved = {log: last + 1 for log, (_, last) in batch.ranges.items()}
        positions = {**self.positions, **moved}
        self.book.save(positions, moved, self._reset_seen)
        self.positions = positions

    def store_positions(self) -> None:
        """The positions only the position file holds so far, into the store (every few seconds,
        when the stream stops or loses its lease)."""
        with self.lock:
            self.book.store_unstored()

    # -- one step ------------------------------------------------------------------------
    def step(self) -> int:
        """Deliver one read's events, a batch at a time (each retried until accepted or
        stopped); returns how many went."""
        if not self.book.leads():
            if self.leading and self.book.unstored:
                self.store_positions()  # whoever leads next reads them from the store
            self.leading = False
            return 0
        if not self.leading:
            self._reload()
            self.leading = True
        elif self.replayed or self._marker_changed():
            self._reload()
        if self._nothing_committed():
            return 0
        version = self.heads.version if self.heads is not None else 0
        self._read_started = time.monotonic()
        size, linger = self.stream.batch_size, self.stream.batch_seconds
        ahead = self._take_ahead()
        if ahead is not None:  # a full window read while the last batch went: no probe, no read
            self._waiting_since = self._idle_version = None
            self.ahead.used += 1
            return self._send_table(ahead, version)
        due = self._waiting_since is not None and time.monotonic() - self._waiting_since >= linger
        if linger > 0 and not due:
            # is a batch ready? this receiver's commits tell (no query) when only its logs can
            # hold new events; else asked without the events' JSON, made only for a batch that goes
            found = self._committed_count()
            if found is None:
                found = self._read(probe=True).num_rows
            if found >= size:  # a backlog: counted (every LAG_EVERY_SECONDS); caught up: lag 0
                self.lags.update(self.positions, force=False)
            if not found:
                self._waiting_since = None
                self._idle(version)
                return 0
            self._idle_version = None
            if found < size:
                started = self._waiting_since = self._waiting_since or time.monotonic()
                if time.monotonic() - started < linger:
                    return 0
        table = self._read()
        if table.num_rows >= size:
            self.lags.update(self.positions, force=False)
        self._waiting_since = None
        if not table.num_rows:
            self._idle(version)
            return 0
        self._idle_version = None
        return self._send_table(table, version)

    @property
    def read_size(self) -> int:
        """Events one read takes at most: whole batches, about READ_EVENTS."""
        size = self.stream.batch_size
        return size * max(1, READ_EVENTS // size)

    def _send_table(self, table: Any, version: int) -> int:
        """Deliver a read's events in ``batch_size`` batches, in order, each saved once accepted;
        a batch not accepted (a stop, a replay, a lost lease) leaves the rest to the next read."""
        full = table.num_rows >= self.read_size
        if full:
            log_name = str(table.column("log")[-1].as_py())
            start = int(table.column("idx")[-1].as_py()) + 1  # where the next read goes once all is accepted
            if self._window_likely_full(log_name, start):
                self._read_ahead(log_name, start)  # catching up: read while these batches go
        sent = 0
        for piece in pieces(table, self.stream.batch_size):
            batch = Batch.from_table(self.stream.name, piece)
            if not self._deliver(batch):
                return sent
            sent += len(batch)
        if not full:  # the read took every undelivered event committed before it
            self._current = None
            self.lags.caught_up(self.positions)
            self._idle(version)
        return sent

    def _window_likely_full(self, log_name: str, start: int) -> bool:
        """Is the window of ``log_name`` from ``start`` worth reading ahead? A log this receiver
        writes: only if its committed size already covers the window (a stream keeping up
        would read a partial window, and read again); another log: when no filter thins it
        out, or the batch before was a full window of it."""
        end = start + self.read_size
        sizes = self.heads.snapshot() if self.heads is not None else {}
        if log_name in sizes:
            return sizes[log_name] >= end
        return not self.stream.filter or self._window_was_full

    def _read_ahead(self, log_name: str, start: int) -> None:
        """Start reading the window of ``log_name`` from index ``start``."""
        size = self.read_size
        statement = q.next_batch(
            self.store.database, self.cond, {log_name: start}, size, self.columns, window=(log_name, size)
        )
        self.ahead.start(log_name, start, statement)

    def _take_ahead(self) -> Any:
        """The window read ahead if it starts at the log's stored position now and is full."""
        table = self.ahead.take(self._current, self.positions)
        if table is None:
            return None
        if table.num_rows < self.read_size:
            self._current = None  # the log's window is not full: the general read decides, not it again
            return None
        self._window_was_full = True
        return table

    def _idle(self, version: int) -> None:
        self._idle_version, self._idle_at = version, time.monotonic()
        if self._read_was_general:
            self._general_at = self._read_started

    def _nothing_committed(self) -> bool:
        """Caught up, and this receiver committed nothing since (the full read still runs every
        FULL_READ_EVERY_SECONDS): no query at all."""
        if self.heads is None or self._idle_version is None:
            return False
        if self.heads.version != self._idle_version:
            return False
        return time.monotonic() - self._idle_at < FULL_READ_EVERY_SECONDS

    def _marker_changed(self) -> bool:
        """Did another receiver replay the stream? Asked at most every MARKER_EVERY_SECONDS (a
        replay through this receiver sets ``replayed`` under the lock instead)."""
        if time.monotonic() - self._marker_at < MARKER_EVERY_SECONDS:
            return False
        self._marker_at = time.monotonic()
        return self.book.reset_marker() != self._reset_seen

    def _reload(self) -> None:
        """The positions as stored (taking over a stream, or after a replay)."""
        with self.lock:
            self._reset_seen = self.book.reset_marker()
            self._marker_at = time.monotonic()
            stored, self.positions = self.book.load()
            self.book.reloaded(stored, self.positions)
            self._current = None
            self.ahead.drop()
            self.replayed = False
            self._idle_version = None
            self._general_at = float("-inf")

    def _read(self, probe: bool = False) -> Any:
        """The next batch's rows. While catching up on one log (the last batch was full), its
        next ``batch_size`` indexes first: a read the seq index keeps to a few granules. When that
        window does not fill a batch, the general read (every log's undelivered events, which
        scans the logs' index columns) decides. ``probe``: only each row's log and index."""
        db, size = self.store.database, self.read_size
        if self._current is not None:
            log_name = self._current
            start = self.positions.get(log_name, 0)
            table = self._query(
                q.next_batch(
                    db, self.cond, {log_name: start}, size, self.columns, window=(log_name, size), probe=probe
                )
            )
            if table.num_rows >= size:
                self._read_was_general = False
                self._window_was_full = True
                return table
        self._window_was_full = False
        targets = self._targets()
        self._read_was_general = targets is None
        if targets is not None and not targets:  # committed to no log of this stream: nothing to ask
            return pa.table({"log": pa.array([], pa.string()), "idx": pa.array([], pa.uint64())})
        return self._query(
            q.next_batch(db, self.cond, self.positions, size, self.columns, probe=probe, only=targets)
        )

    def _committed_count(self) -> int | None:
        """How many events wait, from this receiver's commits (the logs' sizes past the
        positions), when that is exact: no filter, and only the logs committed here can hold
        new events (see :meth:`_targets`). None: ask the store."""
        if self.stream.filter or self.heads is None:
            return None
        targets = self._targets()
        if targets is None:
            return None
        sizes = self.heads.snapshot()
        self._read_was_general = False  # as a read of these logs only: no full read happened
        return sum(sizes[log_name] - start for log_name, start in targets.items())

    def _targets(self) -> dict[str, int] | None:
        """The logs this receiver committed to past the stream's positions, with their next
        index, when nothing else can be undelivered (a read of every log left nothing within
        FULL_READ_EVERY_SECONDS); None: read every log."""
        if self.heads is None or time.monotonic() - self._general_at >= FULL_READ_EVERY_SECONDS:
            return None
        every = "*" in self.stream.tenants
        targets: dict[str, int] = {}
        for log_name, size in self.heads.snapshot().items():
            start = self.positions.get(log_name, 0)
            tenant = tenant_of(log_name)
            if size > start and (every or tenant is None or tenant in self.stream.tenants):
                targets[log_name] = start
        return targets

    def _query(self, statement: Any) -> Any:
        if self.shared is not None:
            table, reused = self.shared.read(self.store, statement, self)
        else:
            table, reused = self.store.query_table(statement), False
        self.metrics.reads.labels(self.stream.name, "shared" if reused else "queried").inc()
        return table

    def _deliver(self, batch: Batch) -> bool:
        """Send until accepted (True), or give up on a stop, a replay or a lost lease."""
        attempts = 0
        name = self.stream.name
        while not self._stop.is_set():
            try:
                with self.lock:
                    if self.replayed or self._marker_changed():
                        self._reload()  # a replay moved the positions: read again from there
                        return False
                    self.sink.send(batch)
                    self._save(batch)
            except DeliveryError as exc:
                attempts += 1
                p = self.progress
                p.failures += 1
                p.last_error, p.last_error_at = str(exc), self.clock()
                self.metrics.batches.labels(name, "failed").inc()
                self.lags.update(
                    self.positions, force=False
                )  # the backlog grows while the destination is away
                delay = backoff(self.stream, attempts)
                log.warning(
                    "stream %s: batch %s not accepted (%s); retry in %.1f s", name, batch.id, exc, delay
                )
                self._stop.wait(delay)
                if not self._stop.is_set() and not self.book.leads():
                    self.leading = False  # another receiver delivers the stream now
                    return False
                continue
            p = self.progress
            p.delivered_events += len(batch)
            p.delivered_batches += 1
            p.last_delivery_at = self.clock()
            self.metrics.batches.labels(name, "accepted").inc()
            self.metrics.delivered.labels(name).inc(len(batch))
            # the lag is a count over every undelivered event: while full batches flow (catching
            # up) it is estimated between reads (every LAG_EVERY_SECONDS), not counted per batch
            full = len(batch) >= self.stream.batch_size
            self._current = batch.table.column("log")[-1].as_py() if full else None
            if full:
                p.lag_events = max(0, p.lag_events - len(batch))
                self.lags.update(self.positions, force=False)
            else:  # the read took every undelivered event: caught up (newer ones counted at the next lag update)
                self.lags.caught_up(self.positions)
            return True
        return False

    # -- the thread ----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"otel-audit-stream-{self.stream.name}", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        name_os_thread(f"oa-stream-{self.stream.name}")  # per-thread CPU (bench.streams_cpu)
        while not self._stop.is_set():
            try:
                delivered = self.step()
            except Exception:  # noqa: BLE001 - the store may be away; try again shortly
                log.exception("stream %s: delivery pass failed", self.stream.name)
                delivered = 0
            if delivered < self.stream.batch_size:
                # a partial batch waiting for batch_seconds is read again when that time is up,
                # not at every poll (each read costs a query)
                wait = self.stream.poll_seconds
                if self._waiting_since is not None:
                    due = self._waiting_since + self.stream.batch_seconds - time.monotonic()
                    wait = max(wait, due)
                    self._stop.wait(wait)
                elif self.heads is not None and self._idle_version is not None:
                    # caught up: sleep until this receiver commits (or the full-read interval)
                    left = FULL_READ_EVERY_SECONDS - (time.monotonic() - self._idle_at)
                    if self.heads.wait(self._idle_version, max(0.0, left)) != self._idle_version:
                        # woken by a commit: still at most one read per poll_seconds (a commit
                        # comes every few ms under load)
                        self._stop.wait(max(0.0, self._idle_at + wait - time.monotonic()))
                else:
                    self._stop.wait(wait)

    def stop(self) -> None:
        self._stop.set()
        if self.heads is not None:
            self.heads.kick()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.ahead.close()  # a read ahead finishes before the store may close
        if self.leading:
            try:
                self.store_positions()
            except Exception:  # noqa: BLE001 - the store may be closing; the file holds them
                log.warning("stream %s: positions not stored at stop (kept on disk)", self.stream.name)
            try:
                self.book.release()
            except Exception:  # noqa: BLE001 - the store may be closing; the term ends anyway
                log.warning("stream %s: could not release the lease", self.stream.name)
        self.sink.close()
