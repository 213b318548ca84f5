"""Writers: the stage between the pipeline and the store. Both take a request's Arrow table
(:meth:`submit`) and commit many requests' rows with one store insert (:class:`StoreCommitter`:
drop ids already stored or repeated, assign the tamper-evidence chain, insert).

- :class:`GroupCommitWriter` (``ingest.ack: store``): a request is acknowledged once its rows
  are in the store. One writer thread takes everything queued, commits it and completes every
  future. The queue is bounded in rows and bytes: past the bound ``submit`` raises
  :class:`Overloaded` at once, so memory stays flat and clients are told to retry later.
- :class:`receiver.journal.committer.JournalWriter` (``ingest.ack: journal``): acknowledged once
  fsync'd in the local journal, committed behind it with the same :class:`StoreCommitter`.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from receiver.integrity.chain import Chainer
from receiver.memory.allocator import trim
from receiver.pipeline.window import expired_rows
from receiver.store.base import AuditStore, StoreUnavailable
from receiver.telemetry import ReceiverMetrics

log = logging.getLogger("otel_audit.receiver")


def name_os_thread(name: str) -> None:
    """Give the calling thread an OS-level name (Linux ``comm``, 15 bytes), so per-thread CPU
    (``/proc/<pid>/task``, bench.ingest) tells the commit thread from the request handlers."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode("ascii")[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


class Overloaded(Exception):
    """The writer queue (or the journal) is full: retry later."""


@dataclass(frozen=True, slots=True)
class CommitResult:
    inserted: int
    duplicates: int
    #: rows whose retention ran out while they waited (journal): not stored, see pipeline/window.py
    expired: int = 0


class EventWriter(Protocol):
    """What the ingest consumer needs of a writer: ``submit`` returns a future that completes
    when the rows are durable (in the store, or in the journal), and raises
    :class:`Overloaded` / :class:`StoreUnavailable` for push-back."""

    def submit(self, table: pa.Table) -> Future[CommitResult]: ...

    def close(self, timeout: float = 30.0) -> None: ...


@dataclass(slots=True)
class _Pending:
    table: pa.Table
    future: Future[CommitResult]


class GroupCommitWriter:
    def __init__(
        self,
        store: AuditStore,
        metrics: ReceiverMetrics,
        *,
        max_queue_rows: int = 200_000,
        max_queue_bytes: int = 256 * 1024 * 1024,
        max_batch_rows: int = 100_000,
        linger_seconds: float = 0.005,
        chainer: Chainer | None = None,
    ) -> None:
        self._committer = StoreCommitter(store, metrics, chainer)
        self._metrics = metrics
        self._max_queue_rows = max_queue_rows
        self._max_queue_bytes = max_queue_bytes
        self._queued_bytes = 0
        self._max_batch_rows = max_batch_rows
        self._linger = linger_seconds
        self._last_group_size = 0
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="otel-audit-writer", daemon=True)
        self._thread.start()

    def submit(self, table: pa.Table) -> Future[CommitResult]:
        future: Future[CommitResult] = Future()
        if table.num_rows == 0:
            future.set_result(CommitResult(0, 0))
            return future
        with self._cond:
            if self._closed:
                raise StoreUnavailable("receiver is shutting down")
            if self._queued_rows + table.num_rows > self._max_queue_rows:
                self._drop_withdrawn()
            if self._queued_rows and self._queued_rows + table.num_rows > self._max_queue_rows:
                raise Overloaded(f"writer queue holds {self._queued_rows} rows")
            if self._queued_bytes and self._queued_bytes + table.nbytes > self._max_queue_bytes:
                raise Overloaded(f"writer queue holds {self._queued_bytes} bytes")
            self._queue.append(_Pending(table, future))
            self._queued_rows += table.num_rows
            self._queued_bytes += table.nbytes
            self._metrics.queue_depth.set(self._queued_rows)
            self._cond.notify()
        return future

    def _drop_withdrawn(self) -> None:
        """Forget queued requests whose callers gave up (their futures are cancelled). Holds _cond."""
        kept = deque(item for item in self._queue if not item.future.cancelled())
        for item in self._queue:
            if item.future.cancelled():
                self._queued_rows -= item.table.num_rows
                self._queued_bytes -= item.table.nbytes
        self._queue = kept
        self._metrics.queue_depth.set(self._queued_rows)

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    def _take_group(self) -> list[_Pending]:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return []
            # Linger only when requests have been arriving together (the last commit took more
            # than one): then a few ms lets the next ones join one insert; a lone request (an
            # idle receiver, an admin read's trail event) is committed at once.
            if self._linger and self._last_group_size > 1:
                time.sleep(self._linger)
            group: list[_Pending] = []
            rows = 0
            with self._cond:
                while self._queue and (
                    not group or rows + self._queue[0].table.num_rows <= self._max_batch_rows
                ):
                    item = self._queue.popleft()
                    rows += item.table.num_rows
                    self._queued_bytes -= item.table.nbytes
                    # a request that gave up waiting (and told its client to retry) is not written
                    if item.future.set_running_or_notify_cancel():
                        group.append(item)
                self._queued_rows -= rows
                self._metrics.queue_depth.set(self._queued_rows)
            if group:
                self._last_group_size = len(group)
                return group

    def _loop(self) -> None:
        name_os_thread("oa-commit")
        while True:
            group = self._take_group()
            if not group:
                return
            try:
                results = self._commit(group)
            except BaseException as exc:  # noqa: BLE001 - every waiter must hear of it
                for item in group:
                    item.future.set_exception(exc)
                continue
            for item, result in zip(group, results, strict=True):
                item.future.set_result(result)

    def _commit(self, group: list[_Pending]) -> list[CommitResult]:
        return self._committer.commit([item.table for item in group])


class StoreCommitter:
    """Dedupe, chain and insert a group of tables; used by one writer thread only."""

    def __init__(self, store: AuditStore, metrics: ReceiverMetrics, chainer: Chainer | None) -> None:
        self._store = store
        self._metrics = metrics
        self._chainer = chainer

    def commit(self, tables: list[pa.Table]) -> list[CommitResult]:
        """One insert for all ``tables``; each table's count of new and duplicate rows."""
        combined = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        ids = combined.column("id").combine_chunks()
        tenant_column = combined.column("tenant_id").combine_chunks()
        tenants = pc.unique(tenant_column).to_pylist()
        # an id is a duplicate only within its tenant: (tenant, id), in the commit and the store
        seen: set[tuple[str, str]] = self._store.existing_ids(tenants, ids)
        expired = expired_rows(self._store, combined, dt.datetime.now(dt.timezone.utc))
        gone = np.zeros(combined.num_rows, dtype=bool) if expired is None else np.array(expired, dtype=bool)
        keep = keep_mask(tenant_column, ids, seen, gone)
        bounds = np.cumsum([0] + [table.num_rows for table in tables])
        kept_per = np.add.reduceat(keep, bounds[:-1]) if tables else []
        gone_per = np.add.reduceat(gone, bounds[:-1]) if tables else []
        results = [
            CommitResult(int(k), table.num_rows - int(k) - int(g), int(g))
            for table, k, g in zip(tables, kept_per, gone_per, strict=True)
        ]
        if expired is not None:
            self._metrics.expired.inc(sum(expired))
            log.warning(
                "%d events reached the end of their tenant's retention while waiting in the journal: "
                "not stored (the store would delete them on insert)",
                sum(expired),
            )
        to_insert = combined.filter(pa.array(keep)) if not keep.all() else combined
        new_heads = None
        if self._chainer is not None and to_insert.num_rows:
            # the one writer thread orders every chain: seq and hashes follow the dedupe
            to_insert, new_heads = self._chainer.assign(to_insert)
        started = time.perf_counter()
        if to_insert.num_rows:
            try:
                self._store.insert(to_insert)
            except BaseException:
                if self._chainer is not None:
                    self._chainer.invalidate()
                raise
        if new_heads:
            self._chainer.advance(new_heads)  # type: ignore[union-attr]
        trim()  # the batch's tables are garbage now: return their pages (receiver/memory)
        m = self._metrics
        m.insert_latency.observe(time.perf_counter() - started)
        m.insert_rows.observe(to_insert.num_rows)
        m.accepted.inc(sum(r.inserted for r in results))
        m.duplicates.inc(sum(r.duplicates for r in results))
        return results


def keep_mask(tenants: pa.Array, ids: pa.Array, stored: set[tuple[str, str]], gone: np.ndarray) -> np.ndarray:
    """Which rows to insert: not ``gone`` (expired), (tenant, id) not ``stored``, and the first
    of the batch's rows with that (tenant, id) among the others. Column-wise: Python touches
    only the rows whose id is among the stored ones."""
    keep = ~gone
    if stored:
        suspects = np.flatnonzero(
            pc.is_in(ids, value_set=pa.array(sorted({i for _, i in stored}), pa.string())).to_numpy(
                zero_copy_only=False
            )
        )
        pairs = zip(tenants.take(suspects).to_pylist(), ids.take(suspects).to_pylist(), strict=True)
        for row, key in zip(suspects.tolist(), pairs, strict=True):
            if key in stored:
                keep[row] = False
    candidates = np.flatnonzero(keep)
    if pc.count_distinct(ids.take(candidates)).as_py() < len(candidates):
        rows = pa.table({"t": tenants.take(candidates), "i": ids.take(candidates), "r": candidates})
        first = rows.group_by(["t", "i"], use_threads=False).aggregate([("r", "min")]).column("r_min")
        keep[:] = False
        keep[first.to_numpy()] = True
    return keep
