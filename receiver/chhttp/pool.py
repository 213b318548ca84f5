"""Each SQL user's fair share of the engine: its own pool of locked sessions, its own worker
threads and its own queue, so one user's heavy queries never hold what another user needs.

A query takes one of its user's session slots (an asyncio semaphore: waiting costs no
thread), runs on that user's threads, and gives the slot back when its answer has been sent
(streamed answers hold the session until the last chunk). At most ``queued`` more queries of
one user wait for a slot; beyond that the user gets ClickHouse's Code 202
(TOO_MANY_SIMULTANEOUS_QUERIES) at once. Engine memory per user is therefore bounded by
``sessions × max_memory_usage`` plus one answer block per running query.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from receiver.store.restricted import RestrictedSession

T = TypeVar("T")
TOO_MANY_QUERIES = 202


class TooManyQueries(Exception):
    """This user already has its sessions busy and its queue full."""


@dataclass(eq=False)
class SqlUserSession:
    """A login and its pool of identically prepared sessions (Grafana runs a dashboard's
    panels concurrently; one chDB session runs one query at a time)."""

    user: str
    password: str
    sessions: tuple[RestrictedSession, ...]
    #: queries of this user that may wait for a session (beyond: Code 202 at once)
    queued: int = 8
    pool: queue.SimpleQueue[RestrictedSession] = field(default_factory=queue.SimpleQueue)
    _slots: asyncio.Semaphore | None = None
    _waiting: int = 0
    _executor: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        for session in self.sessions:
            self.pool.put(session)
        self._executor = ThreadPoolExecutor(
            max_workers=len(self.sessions), thread_name_prefix=f"otel-audit-sql-{self.user[:16]}"
        )

    @property
    def session(self) -> RestrictedSession:
        """Any of the pool: they share settings, database and tables."""
        return self.sessions[0]

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on this user's own threads (never the shared default pool)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def acquire(self) -> RestrictedSession:
        """One of the user's sessions, for one query; queued (FIFO) behind the user's own
        queries only. Give it back with :meth:`release`."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(len(self.sessions))
        if self._slots.locked() and self._waiting >= self.queued:
            raise TooManyQueries(
                f"too many simultaneous queries of user {self.user}: {len(self.sessions)} running"
                f" and {self._waiting} waiting"
            )
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        return self.pool.get_nowait()

    def release(self, session: RestrictedSession) -> None:
        self.pool.put(session)
        assert self._slots is not None
        self._slots.release()

    async def run(self, session: RestrictedSession, fn: Callable[..., T], *args: Any) -> T:
        """Run a query step holding ``session`` on the user's threads. On an error the session
        is released; if the request is cancelled (the client went away) it is released once
        the step ends, after closing any stream the step opened. On success the caller owns
        it (``release`` or ``finish_later``)."""
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        future = self._executor.submit(fn, *args)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:

            def cleanup(done: Future[T]) -> None:
                if not done.cancelled() and done.exception() is None:
                    stream = getattr(done.result(), "stream", None)
                    if stream is not None:
                        stream.close()
                loop.call_soon_threadsafe(self.release, session)

            future.add_done_callback(cleanup)
            raise
        except BaseException:
            self.release(session)
            raise

    def finish_later(self, close: Callable[[], None], session: RestrictedSession) -> None:
        """Run ``close`` on the user's threads, then release ``session``: from the event loop,
        without waiting (also from a request task being cancelled)."""
        loop = asyncio.get_running_loop()
        try:
            assert self._executor is not None
            future = self._executor.submit(close)
        except RuntimeError:  # shutting down: no more threads
            close()
            self.release(session)
            return
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self.release, session))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[RestrictedSession]:
        session = await self.acquire()
        try:
            yield session
        finally:
            self.release(session)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        for session in self.sessions:
            session.close()
