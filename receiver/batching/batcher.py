"""The one batching path: transports hand a request's raw protobuf body (with its identity and
transport name) to :meth:`RequestBatcher.submit` and wait on the future it returns. One worker
thread takes whatever is queued (up to ``max_bytes``, waiting at most ``linger`` for more),
decodes and validates it together (:func:`receiver.batching.process.process`), hands one table to
the writer and resolves each request's future with its own outcome once the writer's future
completes. Fewer threads take turns on the GIL than with one pipeline run per handler thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa

from receiver.batching.osthread import name_os_thread
from receiver.batching.process import Outcome
from receiver.pipeline.auth import IngestIdentity
from receiver.pipeline.run import PipelineResult
from receiver.writer import EventWriter

log = logging.getLogger("otel_audit.receiver")

#: (bodies, identities) → one outcome each
Processor = Callable[[list[bytes], list[IngestIdentity]], list[Outcome]]


@dataclass(slots=True)
class _Group:
    """The requests whose rows went to the writer in one table."""

    members: int
    abandoned: int = 0
    writer_future: Future | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(slots=True)
class Pending:
    """One request in the batcher: its future resolves to its PipelineResult once its rows are
    durable, or to the exception that kept them from it (an ExportError or the writer's)."""

    body: bytes
    identity: IngestIdentity
    transport: str
    future: Future = field(default_factory=Future)
    group: _Group | None = None

    def abandon(self) -> None:
        """The caller stopped waiting: when every request of its group has, withdraw the rows
        from the writer (the client's retry is then the only copy)."""
        group = self.group
        if group is None:
            return
        with group.lock:
            group.abandoned += 1
            if group.abandoned == group.members and group.writer_future is not None:
                group.writer_future.cancel()


class RequestBatcher:
    def __init__(
        self,
        processor: Processor,
        writer: EventWriter,
        on_result: Callable[[Pending, PipelineResult], None],
        *,
        max_bytes: int = 16 * 1024 * 1024,
        linger: float = 0.002,
    ) -> None:
        self._process = processor
        self._writer = writer
        self._on_result = on_result
        self._max_bytes = max_bytes
        self._linger = linger
        self._queue: deque[Pending] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        # the writer's submit blocks until its rows are durable (the journal's fsync): on a thread
        # of its own, so the next batch is decoded meanwhile; one thread keeps batches in order
        self._submitter = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="ingest-submit",
            initializer=name_os_thread,
            initargs=("ingest-submit",),
        )

    def submit(self, body: bytes, identity: IngestIdentity, transport: str) -> Pending:
        pending = Pending(body, identity, transport)
        with self._cond:
            if self._closed:
                raise RuntimeError("ingest batcher is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="ingest-batcher", daemon=True)
                self._thread.start()
            self._queue.append(pending)
            self._cond.notify()
        return pending

    def close(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._submitter.shutdown(wait=True)

    def _take(self) -> list[Pending] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            # a little longer for the requests right behind the first: one decode for all
            deadline = time.monotonic() + self._linger
            while len(self._queue) < 64 and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0 or sum(len(p.body) for p in self._queue) >= self._max_bytes:
                    break
                self._cond.wait(left)
            group: list[Pending] = []
            size = 0
            while self._queue and (not group or size + len(self._queue[0].body) <= self._max_bytes):
                pending = self._queue.popleft()
                size += len(pending.body)
                group.append(pending)
            return group

    def _loop(self) -> None:
        name_os_thread("ingest-batcher")
        while (requests := self._take()) is not None:
            try:
                self._run(requests)
            except Exception as exc:  # noqa: BLE001 - every waiting caller gets the failure
                log.error("ingest batch failed: %s", str(exc)[:500])
                for pending in requests:
                    if not pending.future.done():
                        pending.future.set_exception(exc)

    def _run(self, requests: list[Pending]) -> None:
        requests = [p for p in requests if p.future.set_running_or_notify_cancel()]
        if not requests:
            return
        outcomes = self._process([p.body for p in requests], [p.identity for p in requests])
        waiting: list[tuple[Pending, PipelineResult]] = []
        for pending, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, Exception):
                pending.future.set_exception(outcome)
                continue
            self._on_result(pending, outcome)
            if outcome.accepted:
                waiting.append((pending, outcome))
            else:
                pending.future.set_result(outcome)
        if not waiting:
            return
        group = _Group(members=len(waiting))
        for pending, _ in waiting:
            pending.group = group
        table = pa.concat_tables([result.table for _, result in waiting])
        self._submitter.submit(self._submit, table, waiting, group)

    def _submit(self, table: pa.Table, waiting: list[tuple[Pending, PipelineResult]], group: _Group) -> None:
        try:
            written = self._writer.submit(table)
        except Exception as exc:  # noqa: BLE001 - Overloaded, StoreUnavailable, ...: each caller maps it
            for pending, _ in waiting:
                pending.future.set_exception(exc)
            return
        with group.lock:
            group.writer_future = written
            if group.abandoned == group.members:
                written.cancel()

        def done(fut: Future) -> None:
            error: BaseException | None
            try:
                error = fut.exception()
            except BaseException as exc:  # noqa: BLE001 - cancelled: nobody is waiting any more
                error = exc
            for pending, result in waiting:
                if error is not None:
                    pending.future.set_exception(error)
                else:
                    pending.future.set_result(result)

        written.add_done_callback(done)
