"""Deferred emission: work handed off by the committing thread, run in order on one worker thread.

The ORM integrations (``otel_audit.sqlalchemy``, ``otel_audit.django``) only capture what changed
on the application's commit path; building the OTel log records (redaction, JSON, the SDK's
``logger.emit``) happens here, off the caller's thread. ``record()`` and the middlewares' events
build their attributes on the caller's thread and queue only the SDK part, so every event of the
process leaves in call order. The queue is bounded by event count: when
it is full the caller runs the work itself (it is slowed down, nothing is lost, it never waits on
the network). ``drain()`` runs whatever is still queued on the calling thread and returns once all
of it has been emitted; ``otel_audit.force_flush()``/``shutdown()`` and interpreter exit call it
before the SDK flushes.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: events waiting at most; beyond that the committing thread emits its own events
MAX_PENDING_EVENTS = 65_536
#: the worker emits every this often, or as soon as ``WAKE_AT_EVENTS`` are waiting: few passes of
#: many events each (on a busy machine a wake-up per commit costs more CPU than the emission)
INTERVAL_S = 0.5
WAKE_AT_EVENTS = 512

Job = tuple[Callable[[Any], None], Any, int]


@dataclass
class DeferredStats:
    """Counters: events queued, events the caller had to emit itself (queue full)."""

    queued: int = 0
    inline: int = 0


class Deferred:
    """A bounded FIFO of ``(function, payload, events)`` run by one daemon thread."""

    def __init__(self, max_events: int = MAX_PENDING_EVENTS) -> None:
        self.max_events = max_events
        self.stats = DeferredStats()
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the parent emits what it had queued

    def _reset(self) -> None:
        self._queue: deque[Job] = deque()
        self._pending = 0
        self._count_lock = threading.Lock()
        #: held by whoever runs jobs: ``drain()`` taking it means the worker is between jobs
        self._run_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._local = threading.local()

    def submit(self, fn: Callable[[Any], None], payload: Any, events: int) -> None:
        """Queue ``fn(payload)`` (which must not raise), or run it now when the queue is full."""
        with self._count_lock:
            full = self._pending + events > self.max_events
            if not full:
                self._pending += events
        if full:
            self.stats.inline += events
            fn(payload)
            return
        self.stats.queued += events
        self._queue.append((fn, payload, events))
        if self._thread is None:
            self._start()
        if self._pending >= WAKE_AT_EVENTS and not self._wake.is_set():
            self._wake.set()

    def may_wait(self) -> bool:
        """True while running queued jobs (on the worker, or in ``drain()``, whose caller chose to
        wait); false when a caller runs its own job because the queue was full."""
        return bool(getattr(self._local, "running", False))

    def pending(self) -> int:
        return self._pending

    def drain(self) -> None:
        """Run everything queued so far on this thread (after the job the worker may be running)."""
        if self.may_wait():  # called from inside a job (an exporter flushing us): already draining
            return
        with self._run_lock:
            self._run_queued()

    def _start(self) -> None:
        with self._count_lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._work, name="otel-audit-deferred", daemon=True)
            self._thread.start()
            # registered after the SDK provider's own exit hook, so it runs before it (LIFO)
            atexit.register(self.drain)

    def _work(self) -> None:
        while True:
            self._wake.wait(INTERVAL_S)
            self._wake.clear()
            with self._run_lock:
                self._run_queued()

    def _run_queued(self) -> None:
        self._local.running = True
        try:
            self._run_all()
        finally:
            self._local.running = False

    def _run_all(self) -> None:
        queue = self._queue
        while queue:
            try:
                fn, payload, events = queue.popleft()
            except IndexError:
                return
            try:
                fn(payload)
            except Exception:  # the jobs never raise; a bug in one must not stop the worker
                pass
            with self._count_lock:
                self._pending -= events


DEFERRED = Deferred()
