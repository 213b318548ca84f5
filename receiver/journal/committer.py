"""The journal's writer (``ingest.ack: journal``): a request is acknowledged once its rows are
fsync'd in the local journal (:mod:`receiver.journal`); a commit thread moves what the journal
holds to the store in big batches (:class:`receiver.writer.StoreCommitter`: dedupe, chain,
insert), retries a failed insert with backoff while the journal has room, replays what a
previous process left at start and drains the journal at shutdown. A batch the store *rejects*
(bad data, not an outage) is split to store every row it takes and quarantine the rest
(:mod:`receiver.journal.quarantine`), so one bad row cannot block the journal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future

import pyarrow as pa

from receiver.integrity.chain import Chainer
from receiver.journal import Entry, Journal, JournalFull
from receiver.journal.quarantine import Quarantine, isolate
from receiver.store.base import AuditStore, StoreUnavailable
from receiver.store.errors import is_rejection
from receiver.telemetry import ReceiverMetrics
from receiver.writer import CommitResult, Overloaded, StoreCommitter, name_os_thread

log = logging.getLogger("otel_audit.receiver")


class JournalWriter:
    """Acknowledge on the journal's fsync; commit to the store behind it, in big batches."""

    def __init__(
        self,
        store: AuditStore,
        metrics: ReceiverMetrics,
        journal: Journal,
        *,
        max_batch_rows: int = 100_000,
        interval_seconds: float = 0.5,
        chainer: Chainer | None = None,
        retry_seconds: tuple[float, float] = (0.25, 10.0),
    ) -> None:
        self._committer = StoreCommitter(store, metrics, chainer)
        self._metrics = metrics
        self._journal = journal
        self._max_batch_rows = max_batch_rows
        self._interval = interval_seconds
        self._retry_first, self._retry_max = retry_seconds
        self._pending: deque[Entry] = deque()
        self._pending_rows = 0
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # new entries, shutdown
        self._drained = threading.Condition(lock)  # the store caught up (flush)
        self._closed = False
        self._abandoned = False
        self._committing = False
        self._flushing = 0
        self.quarantine = Quarantine(journal.directory / "quarantine")
        # open (lock + recover) before the first request: replayed records commit first
        recovered = journal.open()
        with self._cond:
            for entry in recovered:
                self._add(entry)
        self._thread = threading.Thread(target=self._loop, name="otel-audit-journal-writer", daemon=True)
        self._thread.start()

    def submit(self, table: pa.Table) -> Future[CommitResult]:
        """Append to the journal (blocking until fsync'd); the returned future is done.
        Its result counts the rows as new: duplicates are only known at commit."""
        future: Future[CommitResult] = Future()
        if table.num_rows == 0:
            future.set_result(CommitResult(0, 0))
            return future
        if self._closed:
            raise StoreUnavailable("receiver is shutting down")
        try:
            entry = self._journal.append(table)
        except JournalFull as exc:
            raise Overloaded(str(exc)) from exc
        with self._cond:
            self._add(entry)
        future.set_result(CommitResult(table.num_rows, 0))
        return future

    def _add(self, entry: Entry) -> None:
        """Holds _cond."""
        self._pending.append(entry)
        self._pending_rows += entry.table.num_rows
        self._metrics.queue_depth.set(self._pending_rows)
        self._metrics.journal_bytes.set(self._journal.bytes_on_disk)
        if len(self._pending) == 1 or self._pending_rows >= self._max_batch_rows:
            self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything acknowledged so far is in the store (tests, tools)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1  # commit now, without the interval's wait
            self._cond.notify_all()
            try:
                while self._pending or self._committing:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._drained.wait(left)
            finally:
                self._flushing -= 1
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking requests, drain the journal into the store, release the journal. What the
        store did not take within ``timeout`` stays in the journal for the next start."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            with self._cond:
                self._abandoned = True
                self._cond.notify_all()
            self._thread.join(5)
            log.warning(
                "%d journal records not committed at shutdown; they replay at next start", len(self._pending)
            )
        self._journal.close()

    def _take(self) -> list[Entry]:
        """The next batch: at most max_batch_rows, once the oldest entry waited ``interval``
        (at once when the batch is full or at shutdown)."""
        with self._cond:
            while True:
                if self._abandoned:
                    return []
                if not self._pending:
                    self._drained.notify_all()
                    if self._closed:
                        return []
                    self._cond.wait()
                    continue
                due = self._pending[0].appended_at + self._interval
                now = time.monotonic()
                if self._closed or self._flushing or self._pending_rows >= self._max_batch_rows or now >= due:
                    break
                self._cond.wait(due - now)
            batch: list[Entry] = []
            rows = 0
            schema = self._pending[0].table.schema
            # a batch never mixes schemas: records replayed from an older version go on their own
            while self._pending and (
                not batch
                or (
                    rows + self._pending[0].table.num_rows <= self._max_batch_rows
                    and self._pending[0].table.schema.equals(schema)
                )
            ):
                entry = self._pending.popleft()
                batch.append(entry)
                rows += entry.table.num_rows
            self._pending_rows -= rows
            self._committing = True
            return batch

    def _loop(self) -> None:
        name_os_thread("oa-commit")
        delay = self._retry_first
        while True:
            batch = self._take()
            if not batch:
                return
            try:
                self._commit(batch)
            except Exception as exc:  # noqa: BLE001 - the entries stay in the journal: retry
                self._metrics.store_errors.inc()
                log.error(
                    "store insert of %d journal records failed (retrying in %.1f s): %s",
                    len(batch),
                    delay,
                    str(exc)[:500],
                )
                with self._cond:
                    self._pending.extendleft(reversed(batch))
                    self._pending_rows += sum(e.table.num_rows for e in batch)
                    self._committing = False
                    self._cond.wait_for(lambda: self._abandoned, delay)
                delay = min(delay * 2, self._retry_max)
                continue
            delay = self._retry_first
            self._journal.committed(batch)
            with self._cond:
                self._committing = False
                self._metrics.queue_depth.set(self._pending_rows)
                self._metrics.journal_bytes.set(self._journal.bytes_on_disk)
                if not self._pending:
                    self._drained.notify_all()

    def _commit(self, batch: list[Entry]) -> None:
        """Commit a batch; if the store rejects its rows (not a transient error), commit what it
        takes and quarantine, durably, the rows it refuses on their own. Raises a transient error."""
        tables = [entry.table for entry in batch]
        try:
            self._committer.commit(tables)
            return
        except Exception as exc:  # noqa: BLE001 - a rejection is handled, the rest retried
            if not is_rejection(exc):
                raise
            error = exc
        combined = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        rejected = isolate(combined, error, lambda piece: self._committer.commit([piece]), is_rejection)
        if not rejected:
            return
        path = self.quarantine.put(rejected, [entry.seq for entry in batch])
        rows = sum(r.table.num_rows for r in rejected)
        self._metrics.quarantined.inc(rows)
        log.error(
            "store rejected %d of %d events of %d journal records; the rest is stored, these are "
            "quarantined in %s (first error: %s)",
            rows,
            combined.num_rows,
            len(batch),
            path,
            rejected[0].error[:500],
        )
