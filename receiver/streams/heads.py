"""This receiver's log sizes as its writer commits them, and the condition a caught-up stream
waits on: the writer's chainer calls :meth:`Heads.advanced` after each commit, so an idle stream
reads the store only when something was committed (or, for logs written by other receivers on
the same ClickHouse server, at its slow full-read interval)."""

from __future__ import annotations

import threading

from receiver.integrity.chain import LOG_PREFIX


def tenant_of(log: str) -> str | None:
    """The tenant of one of this receiver's logs (``otel-audit/<tenant>/<instance>``)."""
    if not log.startswith(LOG_PREFIX) or "/" not in log[len(LOG_PREFIX) :]:
        return None
    return log[len(LOG_PREFIX) :].rpartition("/")[0]


class Heads:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        #: bumped at every commit (and by :meth:`kick`)
        self.version = 0
        #: log (chain_id) -> its size (the next index) as last committed here
        self.sizes: dict[str, int] = {}

    def advanced(self, sizes: dict[str, int]) -> None:
        """Called on the writer's thread once a commit's events are stored."""
        with self._cond:
            self.sizes.update(sizes)
            self.version += 1
            self._cond.notify_all()

    def snapshot(self) -> dict[str, int]:
        with self._cond:
            return dict(self.sizes)

    def kick(self) -> None:
        """Wake every waiting stream (stopping, or a replay moved positions)."""
        self.advanced({})

    def wait(self, seen: int, timeout: float) -> int:
        """Block until a commit after version ``seen`` or ``timeout`` seconds; the version now."""
        with self._cond:
            self._cond.wait_for(lambda: self.version != seen, timeout)
            return self.version
