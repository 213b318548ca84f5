"""A stream's delivery counters and lag: how many stored events it has not delivered yet and how
old the oldest is (counted at most every few seconds while a backlog exists), and the backlog
state, warning and alert when that count goes over the stream's ``backlog_limit``."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from receiver.store import streams_sql as q
from receiver.streams.config import Stream
from receiver.streams.metrics import StreamMetrics

log = logging.getLogger("otel_audit.streams")
LAG_EVERY_SECONDS = 5.0


@dataclass
class Progress:
    delivered_events: int = 0
    delivered_batches: int = 0
    failures: int = 0
    last_error: str = ""
    last_error_at: dt.datetime | None = None
    last_delivery_at: dt.datetime | None = None
    lag_events: int = 0
    lag_seconds: float = 0.0
    backlog_exceeded: bool = False
    #: the stream-backlog alert of this episode was raised
    backlog_alerted: bool = False


class Lag:
    def __init__(
        self,
        store: Any,
        stream: Stream,
        cond: Any,
        metrics: StreamMetrics,
        progress: Progress,
        clock: Callable[[], dt.datetime],
        alert: Callable[[], object] | None = None,
    ) -> None:
        self.store = store
        self.stream = stream
        self.cond = cond
        self.metrics = metrics
        self.progress = progress
        self.clock = clock
        #: raises the backlog alert (on the stream's thread)
        self.alert = alert
        self._at = 0.0

    def count(self, positions: dict[str, int]) -> tuple[int, float]:
        """Undelivered events past ``positions``, and the oldest one's age in seconds."""
        row = self.store.query_table(q.lag(self.store.database, self.cond, positions)).to_pylist()[0]
        events = int(row["events"])
        if not events or row["oldest"] is None:
            return events, 0.0
        return events, max(0.0, (self.clock() - row["oldest"]).total_seconds())

    def caught_up(self, positions: dict[str, int]) -> None:
        """A read took every undelivered event: lag 0 (newer events are counted at the next update)."""
        p, name = self.progress, self.stream.name
        p.lag_events, p.lag_seconds = 0, 0.0
        self.metrics.lag_events.labels(name).set(0)
        self.metrics.lag_seconds.labels(name).set(0)
        if p.backlog_exceeded:
            self.update(positions, force=True)  # clear the backlog state from a real count

    def update(self, positions: dict[str, int], force: bool) -> None:
        """Count the lag (at most every LAG_EVERY_SECONDS unless ``force``) and act on the backlog."""
        if not force and time.monotonic() - self._at < LAG_EVERY_SECONDS:
            return
        self._at = time.monotonic()
        events, seconds = self.count(positions)
        p, name = self.progress, self.stream.name
        p.lag_events, p.lag_seconds = events, seconds
        self.metrics.lag_events.labels(name).set(events)
        self.metrics.lag_seconds.labels(name).set(seconds)
        exceeded = events > self.stream.backlog_limit
        if exceeded and not p.backlog_alerted and self.alert is not None:
            try:
                self.alert()
                p.backlog_alerted = True
            except Exception:  # noqa: BLE001 - the alert is raised again at the next lag update
                log.exception("stream %s: the backlog alert could not be raised", name)
        if not exceeded:
            p.backlog_alerted = False
        if exceeded and not p.backlog_exceeded:
            log.warning(
                "stream %s: %d undelivered events exceed its backlog_limit %d (ingest goes on; the oldest "
                "waits %.0f s)",
                name,
                events,
                self.stream.backlog_limit,
                seconds,
            )
        p.backlog_exceeded = exceeded
        self.metrics.backlog_exceeded.labels(name).set(1 if exceeded else 0)
