"""One stream's delivery loop, on the receiver holding the stream's lease: read the next batch
from the stream's positions (per log, the next index to deliver), send it until the destination
accepts it (exponential backoff with jitter), then store the new positions. A crash between the
two resends that one batch (same events, same batch id): at least once, in order per log.

Leases: each receiver claims the current term (``lease_seconds``) of each stream in
``stream_state``; the earliest claim not released leads. A receiver that stops releases its term,
so a restart takes over at once; after a kill -9 the next term (at most ``lease_seconds``) does.
A receiver that leads reloads the positions from the store, so nothing depends on who led before.

What to read (a read takes several batches; the window of a log being caught up on, read ahead
on a second thread; only the logs committed to once caught up) is receiver/streams/reads.py;
the lease and the positions receiver/streams/bookkeeping.py; the lag and backlog lag.py. A window
read ahead is used only once the batches before it were accepted and their positions stored, and
only if that position is where the window starts; a failure, a replay, a new lead or a restart
leaves it unused (it is only memory).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from receiver.store import streams_sql as q
from receiver.streams import reads
from receiver.streams.batch import Batch, DeliveryError, pieces
from receiver.streams.bookkeeping import Bookkeeping
from receiver.streams.config import Stream
from receiver.streams.heads import Heads
from receiver.streams.lag import Lag, Progress
from receiver.streams.metrics import StreamMetrics
from receiver.streams.positions import PositionFile
from receiver.streams.shared import SharedReads
from receiver.streams.sinks import Sink, build_sink
from receiver.writer import name_os_thread

log = logging.getLogger("otel_audit.streams")
UTC = dt.timezone.utc
#: how often an idle or busy runner looks for a replay made by another receiver
MARKER_EVERY_SECONDS = 2.0


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
        #: this receiver's commits (None: poll every poll_seconds, as without a writer)
        self.heads = heads
        #: the read shared with streams of the same tenants, filter and format
        self.shared = shared
        #: heads' version at the last read that left nothing undelivered (None: not caught up)
        self._idle_version: int | None = None
        self._idle_at = 0.0
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
        #: set (under ``lock``) by a replay through this receiver: reload the positions
        self.replayed = False
        self._waiting_since: float | None = None
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: what to read next, and the read ahead (receiver/streams/reads.py)
        self.reader = reads.Reads(store, stream, self.cond, self.columns, metrics, heads, shared, asker=self)
        self.ahead = self.reader.ahead

    # -- bookkeeping (receiver/streams/bookkeeping.py) ------------------------------------
    @property
    def position_file(self) -> PositionFile | None:
        return self.book.position_file

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
        ahead = self.reader.take_ahead(self.positions)
        if ahead is not None:  # a full window read while the last batch went: no probe, no read
            self._waiting_since = self._idle_version = None
            return self._send_table(ahead, version)
        due = self._waiting_since is not None and time.monotonic() - self._waiting_since >= linger
        if linger > 0 and not due:
            # is a batch ready? this receiver's commits tell (no query) when only its logs can
            # hold new events; else asked without the events' JSON, made only for a batch that goes
            found = self.reader.committed_count(self.positions)
            if found is None:
                found = self.reader.read(self.positions, probe=True).num_rows
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
        table = self.reader.read(self.positions)
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
        """Events one read takes at most (receiver/streams/reads.py)."""
        return self.reader.size

    def _send_table(self, table: Any, version: int) -> int:
        """Deliver a read's events in ``batch_size`` batches, in order, each saved once accepted;
        a batch not accepted (a stop, a replay, a lost lease) leaves the rest to the next read."""
        full = table.num_rows >= self.read_size
        if full:  # catching up: the window after it is read while these batches go
            self.reader.read_ahead_after(table)
        sent = 0
        for piece in pieces(table, self.stream.batch_size):
            batch = Batch.from_table(self.stream.name, piece)
            if not self._deliver(batch):
                return sent
            sent += len(batch)
        if full:
            # more wait: the next read starts with this log's window; the lag is a count over
            # every undelivered event, estimated between counts (every LAG_EVERY_SECONDS)
            self.reader.current = str(table.column("log")[-1].as_py())
            self.lags.update(self.positions, force=False)
        else:  # the read took every undelivered event committed before it: caught up
            self.reader.current = None
            self.lags.caught_up(self.positions)
            self._idle(version)
        return sent

    def _idle(self, version: int) -> None:
        self._idle_version, self._idle_at = version, time.monotonic()
        if self.reader.was_general:
            self.reader.general_at = self._read_started

    def _nothing_committed(self) -> bool:
        """Caught up, and this receiver committed nothing since (the full read still runs every
        FULL_READ_EVERY_SECONDS): no query at all."""
        if self.heads is None or self._idle_version is None:
            return False
        if self.heads.version != self._idle_version:
            return False
        return time.monotonic() - self._idle_at < reads.FULL_READ_EVERY_SECONDS

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
            stored, self.positions = self.book.load(self._reset_seen)
            self.book.reloaded(stored, self.positions)
            self.reader.reset()
            self.replayed = False
            self._idle_version = None

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
                # the backlog grows while the destination is away
                self.lags.update(self.positions, force=False)
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
            p.lag_events = max(0, p.lag_events - len(batch))
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
                    left = reads.FULL_READ_EVERY_SECONDS - (time.monotonic() - self._idle_at)
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
