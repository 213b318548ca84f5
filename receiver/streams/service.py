"""The receiver's streams: one :class:`Runner` thread per enabled stream, their status (what
``GET /api/streams`` and ``otel-audit streams status`` show) and replays (positions moved back to
the first index at or after a time, recorded as an ``audit.stream.replayed`` event per tenant)."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otel_audit import attributes as A
from receiver.model import iso_utc
from receiver.store import streams_sql as q
from receiver.streams.config import Stream
from receiver.streams.heads import Heads
from receiver.streams.metrics import StreamMetrics
from receiver.streams.positions import PositionFile, local_directory
from receiver.streams.runner import Runner
from receiver.streams.shared import SharedReads

UTC = dt.timezone.utc
REPLAYED_EVENT = "audit.stream.replayed"
#: the rule name of the built-in alert raised when a stream's backlog exceeds its limit
BACKLOG_RULE = "stream-backlog"
#: a backlog alert goes to at most this many tenants (those with the most waiting events)
BACKLOG_TENANTS = 100
Record = Callable[[Any], object]


class UnknownStream(KeyError):
    pass


def replayed_request(
    stream: str, tenants: list[str], actor: str, since: dt.datetime
) -> ExportLogsServiceRequest:
    """One ``audit.stream.replayed`` event per tenant whose events the replay sends again."""
    now = time.time_ns()
    records = []
    for tenant in tenants:
        attrs = {
            A.EVENT_ID: str(uuid.uuid4()),
            A.TENANT_ID: tenant,
            A.USER_ID: actor,
            A.ACTOR_TYPE: "user",
            A.ACTION: "update",
            A.OUTCOME: "success",
            A.RESOURCE_TYPE: "stream",
            A.RESOURCE_ID: stream,
            "stream.replay.since": iso_utc(since) or "",
        }
        records.append(
            LogRecord(
                time_unix_nano=now,
                event_name=REPLAYED_EVENT,
                body=AnyValue(string_value=f"stream {stream} replays events since {iso_utc(since)}"),
                attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs.items()],
            )
        )
    resource = Resource(attributes=[KeyValue(key=A.SERVICE_NAME, value=AnyValue(string_value="otel-audit"))])
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=records)])]
    )


class Streams:
    def __init__(
        self, store: Any, streams: tuple[Stream, ...], record: Record, registry: Any, instance_id: str
    ) -> None:
        self.store = store
        self.record = record
        self.metrics = StreamMetrics(registry)
        holder = f"{instance_id}/{os.getpid()}-{secrets.token_hex(4)}"
        self.configs = {s.name: s for s in streams}
        #: this receiver's commits (the server adds :meth:`Heads.advanced` to its chainer)
        self.heads = Heads()
        #: one shared read per set of streams with the same tenants, filter and format
        self.shared: dict[tuple[Any, ...], SharedReads] = {}
        self.runners = {
            s.name: Runner(
                store,
                s,
                self.metrics,
                holder,
                on_backlog=self._backlog_alert,
                heads=self.heads,
                shared=self._shared_for(s),
                position_file=position_file(store, s),
            )
            for s in streams
            if s.enabled
        }
        #: the receiver's alert evaluator (None: alerts disabled; the warning and metric remain)
        self.alerts: Any = None

    def _shared_for(self, stream: Stream) -> SharedReads:
        cond = q.condition(stream.filter, stream.tenants)
        key = (cond.sql, repr(sorted(cond.params.items())), stream.format)
        return self.shared.setdefault(
            key, SharedReads(ttl=min(5.0, stream.batch_seconds + stream.poll_seconds))
        )

    def _backlog_alert(self, runner: Runner) -> None:
        """A ``stream-backlog`` alert per tenant whose events wait. Its identity is the stream
        and the oldest waiting event's storage time, which stays put while the destination is
        away: the same backlog raised again (a restart, another receiver) is the same alert."""
        if self.alerts is None:
            return
        stream = runner.stream
        rows = self.store.query_table(
            q.lag_by_tenant(self.store.database, runner.cond, dict(runner.positions), BACKLOG_TENANTS)
        ).to_pylist()
        total = runner.progress.lag_events
        now = dt.datetime.now(UTC)
        for row in rows:
            oldest = row["oldest"]
            summary = (
                f"stream {stream.name}: {total} undelivered events exceed its backlog_limit "
                f"{stream.backlog_limit} ({row['events']} of tenant {row['tenant']}; the oldest stored "
                f"{iso_utc(oldest)}); ingest goes on, the stream catches up when its destination accepts"
            )
            self.alerts.raise_alert(
                BACKLOG_RULE,
                row["tenant"],
                {"stream": stream.name},
                iso_utc(oldest) or "",
                (oldest, now),
                int(row["events"]),
                stream.backlog_severity,
                stream.backlog_destinations,
                summary,
            )

    def start(self) -> None:
        for runner in self.runners.values():
            runner.start()

    def stop(self) -> None:
        for runner in self.runners.values():
            runner.stop()

    def status(self) -> list[dict[str, Any]]:
        """Each stream: its configuration without secrets, positions and lag (read from the store,
        whichever receiver delivers it) and this receiver's delivery counters."""
        return [
            stream_status(self.store, stream, self.metrics, self.runners.get(name))
            for name, stream in self.configs.items()
        ]

    def replay(self, name: str, since: dt.datetime, actor: str) -> dict[str, Any]:
        """Move every log's position back to its first index at or after ``since`` (never forward),
        record the replay, and tell whichever receiver delivers the stream to reload."""
        stream = self.configs.get(name)
        if stream is None:
            raise UnknownStream(name)
        runner = self.runners.get(name)
        helper = runner or Runner(
            self.store,
            stream,
            self.metrics,
            "replay",
            sink=_NoSink(),
            position_file=position_file(self.store, stream),
        )
        rows = self.store.query_table(q.replay_positions(self.store.database, helper.cond, since)).to_pylist()
        lock = runner.lock if runner is not None else None
        if lock is not None:
            lock.acquire()
        try:
            current = helper.load_positions()
            moved = {r["log"]: int(r["first"]) for r in rows if int(r["first"]) < current.get(r["log"], 0)}
            tenants = sorted({r["tenant"] for r in rows if r["log"] in moved})
            if tenants:  # recorded before it takes effect: no replay without its audit event
                self.record(replayed_request(name, tenants, actor, since))
            now = dt.datetime.now(UTC)
            # every log's position, not only the moved ones: positions newer in the position file
            # than in the store no longer count once the replay's marker is stored
            positions = {**current, **moved}
            if positions:
                items = [(k, str(v)) for k, v in sorted(positions.items())]
                self.store.insert_into(q.STATE_TABLE, q.state_table(name, "position", items, now))
            self.store.insert_into(
                q.STATE_TABLE, q.state_table(name, "reset", [("", iso_utc(since) or "")], now)
            )
            if runner is not None:
                runner.replayed = True
        finally:
            if lock is not None:
                lock.release()
        if runner is not None:
            self.heads.kick()  # a caught-up runner sleeps until a commit: wake it to reload
        return {"stream": name, "since": iso_utc(since), "positions": moved, "tenants": tenants}


def stream_status(
    store: Any, stream: Stream, metrics: StreamMetrics, runner: Runner | None = None
) -> dict[str, Any]:
    """One stream's status from the store (positions, lag, the last stored position, the
    receiver holding its lease now) and, from ``runner``, this receiver's delivery counters."""
    helper = runner or Runner(
        store, stream, metrics, "status", sink=_NoSink(), position_file=position_file(store, stream)
    )
    positions = helper.load_positions()
    events, seconds = helper.lags.count(positions)
    item: dict[str, Any] = {
        "name": stream.name,
        "kind": stream.kind,
        "enabled": stream.enabled,
        "tenants": list(stream.tenants),
        "positions": positions,
        "lag_events": events,
        "lag_seconds": round(seconds, 3),
        "backlog_limit": stream.backlog_limit,
        "backlog_exceeded": events > stream.backlog_limit,
        "delivering_here": bool(runner and runner.leading),
        "config": stream.public(),
    }
    if runner is not None:
        p = runner.progress
        item.update(
            delivered_events=p.delivered_events,
            delivered_batches=p.delivered_batches,
            failures=p.failures,
            last_error=p.last_error,
            last_error_at=iso_utc(p.last_error_at),
            last_delivery_at=iso_utc(p.last_delivery_at),
        )
    else:  # read from the store: when a position last moved, and who holds the current term
        row = store.query_table(q.last_state(store.database, stream.name, "position")).to_pylist()[0]
        term = int(dt.datetime.now(UTC).timestamp() // stream.lease_seconds)
        claims = store.query_table(q.lease_claims(store.database, stream.name, term)).to_pylist()
        item.update(
            last_delivery_at=iso_utc(row["at"]) if row["n"] else None,
            lease_holder=claims[0]["holder"] if claims else None,
        )
    return item


def offline_status(store: Any, streams: tuple[Stream, ...]) -> list[dict[str, Any]]:
    """Every configured stream's status read straight from the store (``otel-audit streams
    status`` without ``--server``): positions, lag, backlog; no delivery counters."""
    from prometheus_client import CollectorRegistry

    metrics = StreamMetrics(CollectorRegistry())
    return [stream_status(store, stream, metrics) for stream in streams]


def position_file(store: Any, stream: Stream) -> PositionFile | None:
    """The stream's position file with the embedded store (receiver/streams/positions.py)."""
    directory = local_directory(store)
    return PositionFile(directory, stream.name) if directory is not None else None


class _NoSink:
    def send(self, batch: Any) -> None:  # pragma: no cover - status and replay never send
        raise RuntimeError("not a delivering runner")

    def close(self) -> None:
        pass


def build_streams(
    store: Any, streams: tuple[Stream, ...], record: Record, registry: Any, instance_id: str
) -> Streams | None:
    """The receiver's streams (None when none are configured)."""
    if not streams:
        return None
    return Streams(store, streams, record, registry, instance_id)
