"""A stream catching up on one log reads that log's next window on a thread of its own while the
current batch is gzipped and sent; the window is handed over only if the stream's stored
position is then the window's start (the batch before it was accepted and saved), never past an
unacknowledged batch, and dropped on a replay, a new lease or a restart."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from receiver.writer import name_os_thread

log = logging.getLogger("otel_audit.streams")


class ReadAhead:
    def __init__(self, stream: str, query: Callable[[Any], Any]) -> None:
        self._stream = stream
        self._query = query
        #: (log, first index) of the window being read, and its read
        self._ahead: tuple[tuple[str, int], Future[Any]] | None = None
        self._fetcher: ThreadPoolExecutor | None = None
        #: windows handed over (tests, bench)
        self.used = 0

    def start(self, log_name: str, start: int, statement: Any) -> None:
        """Read ``statement`` (the window of ``log_name`` from index ``start``) in the background."""
        self.drop()
        if self._fetcher is None:
            prefix = f"oa-fetch-{self._stream}"
            self._fetcher = ThreadPoolExecutor(1, prefix, initializer=name_os_thread, initargs=(prefix,))
        self._ahead = ((log_name, start), self._fetcher.submit(self._query, statement))

    def take(self, current: str | None, positions: dict[str, int]) -> Any:
        """The window's table if it starts where ``current``'s stored position now is; else None
        (dropped). A failed read is logged and left to the ordinary read."""
        if self._ahead is None:
            return None
        (log_name, start), future = self._ahead
        self._ahead = None
        if current != log_name or positions.get(log_name, 0) != start:
            future.cancel()
            return None
        try:
            return future.result()
        except Exception:  # noqa: BLE001 - the ordinary read runs instead (and reports its own error)
            log.warning("stream %s: the read ahead failed", self._stream, exc_info=True)
            return None

    def drop(self) -> None:
        if self._ahead is not None:
            self._ahead[1].cancel()
            self._ahead = None

    def close(self) -> None:
        """Wait for a read in flight: it finishes before the store may close."""
        if self._fetcher is not None:
            self._fetcher.shutdown(wait=True, cancel_futures=True)
