"""Delivers fired alerts to their destinations until each accepts (exponential backoff with
jitter), keeping what was delivered in the store, so a restart or a new leader sends what is still
pending and nothing twice that was accepted. A delivery still failing ``give_up_after`` after its
alert fired is dead-lettered: counted in /metrics, marked in the store, shown by /api/alerts."""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from receiver.alerts.config import Alerts, Destination
from receiver.alerts.destinations import deliver
from receiver.alerts.metrics import AlertMetrics
from receiver.alerts.model import Alert
from receiver.store import alerts_sql as q

log = logging.getLogger("otel_audit.alerts")
MAX_BACKOFF_SECONDS = 300.0


@dataclass
class Pending:
    alert: Alert
    destination: Destination
    attempts: int = 0
    next_at: dt.datetime | None = None
    last_error: str = ""


def backoff(attempts: int) -> float:
    """Seconds before the next attempt: 1, 2, 4, … capped at five minutes, with jitter."""
    return min(MAX_BACKOFF_SECONDS, 2.0 ** max(0, attempts - 1)) * random.uniform(0.5, 1.0)  # noqa: S311


class Deliverer:
    def __init__(
        self, store: Any, config: Alerts, metrics: AlertMetrics, clock: Callable[[], dt.datetime]
    ) -> None:
        self.store = store
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self.destinations = {d.name: d for d in config.destinations}
        self._pending: dict[tuple[str, str], Pending] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(follow_redirects=False)

    def enqueue(self, alert: Alert) -> None:
        with self._lock:
            for name in alert.destinations:
                if name in self.destinations:
                    self._pending.setdefault((alert.id, name), Pending(alert, self.destinations[name]))
            self.metrics.pending.set(len(self._pending))
        self._wake.set()

    def load_pending(self, now: dt.datetime) -> None:
        """What fired within ``give_up_after`` and was neither delivered nor dead-lettered."""
        done = {
            (row["key"], row["value"])
            for kind in ("delivered", "dead")
            for row in self.store.query_table(q.state(self.store.database, kind)).to_pylist()
        }
        since = now - dt.timedelta(seconds=self.config.give_up_after)
        for row in self.store.query_table(q.fired_since(self.store.database, since)).to_pylist():
            alert = Alert.from_event(row["id"], row["tenant"], dict(row["attributes"]), row["created_at"])
            with self._lock:
                for name in alert.destinations:
                    if (alert.id, name) not in done and name in self.destinations:
                        self._pending.setdefault((alert.id, name), Pending(alert, self.destinations[name]))
        self.metrics.pending.set(len(self._pending))
        self._wake.set()

    def status(self) -> dict[str, list[dict[str, Any]]]:
        """Pending deliveries by alert id: destination, attempts, the last error."""
        out: dict[str, list[dict[str, Any]]] = {}
        with self._lock:
            for (alert_id, name), p in self._pending.items():
                out.setdefault(alert_id, []).append(
                    {
                        "destination": name,
                        "state": "pending",
                        "attempts": p.attempts,
                        "last_error": p.last_error,
                    }
                )
        return out

    def run_due(self) -> int:
        """One pass over the deliveries that are due; returns how many were accepted."""
        now = self.clock()
        with self._lock:
            due = [p for p in self._pending.values() if p.next_at is None or p.next_at <= now]
        accepted = 0
        for p in due:
            error = deliver(self._client, p.destination, p.alert)
            name = p.destination.name
            if error is None:
                self._mark("delivered", p)
                self.metrics.deliveries.labels(name, "accepted").inc()
                accepted += 1
                continue
            self.metrics.deliveries.labels(name, "failed").inc()
            p.attempts += 1
            p.last_error = error
            if (now - p.alert.fired_at).total_seconds() >= self.config.give_up_after:
                self._mark("dead", p)
                self.metrics.dead_letters.labels(name).inc()
                log.error(
                    "alert %s: giving up on destination %s after %d attempts: %s",
                    p.alert.id,
                    name,
                    p.attempts,
                    error,
                )
                continue
            p.next_at = now + dt.timedelta(seconds=backoff(p.attempts))
            log.warning(
                "alert %s: destination %s failed (%s); retry in %s", p.alert.id, name, error, p.next_at - now
            )
        return accepted

    def _mark(self, kind: str, p: Pending) -> None:
        self.store.insert_into(
            q.STATE_TABLE, q.state_table(kind, [(p.alert.id, p.destination.name)], self.clock())
        )
        with self._lock:
            self._pending.pop((p.alert.id, p.destination.name), None)
            self.metrics.pending.set(len(self._pending))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="otel-audit-alert-delivery", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_due()
            except Exception:  # noqa: BLE001 - the store may be away; try again shortly
                log.exception("alert delivery pass failed")
            self._wake.wait(0.5)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._client.close()
