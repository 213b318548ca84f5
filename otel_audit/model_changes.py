"""Row changes found by an ORM integration (SQLAlchemy, Django), held until the transaction commits.

``Change`` is one event to emit, ``Rows`` one bulk statement's events that share their changes,
``Each`` one bulk statement's rows with their own values (both held as flat tuples: the per-row
work and objects are the worker's, not the committing thread's); ``merge`` folds a row's later
updates in the same transaction into its first event; ``emit`` (called on commit) only queues
them with the commit's time and trace context: the records are built and handed to the SDK on
the deferred worker (``otel_audit.deferred``), each under the request context it was made in.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from time import monotonic, time_ns
from typing import Any

from opentelemetry.context import get_current

from otel_audit.context import AuditContext, reset_context, set_context
from otel_audit.deferred import DEFERRED
from otel_audit.pipeline import STATE
from otel_audit.recorder import changes_json, note_error, record_change


@dataclass(slots=True)
class Change:
    """One event to emit after commit (slotted, not frozen: built once per flushed row, and a frozen
    dataclass costs 1.7–3.5 µs to build against 0.6 µs)."""

    action: str
    resource_type: str
    resource_id: str
    #: ``{"field": {"old": …, "new": …}}``, or already redacted wire JSON (``changes_json``) when
    #: many events share it (a bulk statement's rows)
    changes: dict[str, dict[str, Any]] | str | None
    context: AuditContext
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Rows:
    """A bulk statement's rows: one event per row, all with the same changes (already wire JSON).

    The rows' primary keys are held flat, as captured on the committing thread: one sequence of
    values per key column (a tuple of ints or strings is a single object the garbage collector
    does not track); the worker turns them into ``resource_id``\\ s (``ids()``)."""

    action: str
    resource_type: str
    #: one sequence per primary-key column, all as long as there are rows (composite keys: several)
    keys: tuple[Sequence[Any], ...]
    changes: str | None
    context: AuditContext
    extra: dict[str, Any]

    def count(self) -> int:
        return len(self.keys[0]) if self.keys else 0

    def ids(self) -> Iterator[str]:
        """Each row's ``resource_id``: the key's text, ``:``-joined when composite (``None`` → "")."""
        if len(self.keys) == 1:
            return ("" if v is None else str(v) for v in self.keys[0])
        return (":".join("" if v is None else str(v) for v in row) for row in zip(*self.keys, strict=True))


@dataclass(slots=True)
class Each:
    """A bulk statement whose rows carry their own values (ORM bulk UPDATE by primary key, an
    ``insert()`` of many parameter sets): the rows as captured on the committing thread (flat
    tuples of the parameters' names and values), each turned into ``(resource_id, changes)`` by
    ``build`` on the worker."""

    action: str
    resource_type: str
    rows: list[Any]
    build: Callable[[Any], tuple[str, dict[str, dict[str, Any]]]]
    context: AuditContext
    extra: dict[str, Any]

    def count(self) -> int:
        return len(self.rows)


Job = Change | Rows | Each


def merge(changes: Iterable[Job]) -> list[Job]:
    """One event per row and transaction: later flushes' updates of a created or updated row fold
    into its first event (the oldest ``old``, the newest ``new``)."""
    out: list[Job] = []
    seen: dict[tuple[str, str], Change] = {}
    for change in changes:
        if not isinstance(change, Change):  # a bulk statement's: never merged
            out.append(change)
            continue
        key = (change.resource_type, change.resource_id)
        first = seen.get(key) if change.resource_id and not change.extra else None
        if (
            first is not None
            and change.action == "update"
            and first.action in ("create", "update")
            and isinstance(first.changes, dict)
            and isinstance(change.changes, dict)
        ):
            for name, entry in change.changes.items():
                if name in first.changes:
                    first.changes[name]["new"] = entry["new"]
                else:
                    first.changes[name] = dict(entry)
            continue
        if change.resource_id and not change.extra:
            seen[key] = change
        out.append(change)
    return out


#: a job this large (a bulk statement's rows) is handed to the SDK in parts, its queue flushed
#: (exported) between them by the worker, which may wait where the application must not: the
#: SDK's batch processor drops what overflows its queue (2048 records by default)
MAX_PART = 1024
#: objects the garbage collector tracks per record waiting in the SDK's queue (its LogRecord,
#: attributes and their lock and dict, context), 6 measured, rounded up
OBJECTS_PER_RECORD = 8


def part_size() -> int:
    """Events per part: few enough that a part's records are exported (and freed) before the
    collector's young generation fills (its threshold / ``OBJECTS_PER_RECORD``: 87 by default), so
    they are never promoted to the old generation, whose growth triggers the full collections
    that pause every thread of the application. Read, never changed: an application that raised
    the threshold or disabled the collector gets larger parts (fewer, larger export requests)."""
    threshold = gc.get_threshold()[0] if gc.isenabled() else 0
    return MAX_PART if threshold <= 0 else max(32, min(MAX_PART, threshold // OBJECTS_PER_RECORD))


#: a flush slower than this (a receiver that went away: the exporter waits out its retries) makes
#: the rest of the job use ``MAX_PART``: fewer waits while the export fails
SLOW_FLUSH_S = 0.1


def _flush(pipeline: Any) -> bool:
    """Export what the SDK holds; True when that was quick."""
    flush = getattr(pipeline.provider, "force_flush", None)
    if not callable(flush):
        return True
    start = monotonic()
    flush()
    return monotonic() - start < SLOW_FLUSH_S


def emit(changes: Iterable[Job]) -> None:
    """Queue the committed changes for the deferred worker. Never raises."""
    try:
        batch = changes if isinstance(changes, list) else list(changes)
        if batch:
            events = 0
            for change in batch:
                events += 1 if isinstance(change, Change) else change.count()
            job = (batch, STATE.pipeline, time_ns(), get_current(), _settled(batch))
            DEFERRED.submit(_emit_now, job, events)
    except Exception as exc:  # never raise into the application's commit
        note_error(exc)


def _settled(batch: list[Job]) -> dict[int, AuditContext] | None:
    """The contexts whose route is resolved lazily (the framework's route template), answered now,
    while the request is still being handled: the worker runs after it (``None``: none was)."""
    out: dict[int, AuditContext] | None = None
    for change in batch:
        context = change.context
        if context.route_resolver is not None and context.http_route is None:
            if out is None:
                out = {}
            if id(context) not in out:
                route = context.route_resolver()
                out[id(context)] = replace(context, route_resolver=lambda route=route: route)
    return out


def _emit_now(job: tuple[list[Job], Any, int, Any, dict[int, AuditContext] | None]) -> None:
    """Record each change under the request context it was made in (on the deferred worker, or
    on the committing thread when the queue is full). Never raises."""
    batch, pipeline, timestamp, trace_context, settled = job
    context: AuditContext | None = None
    token = None
    emitted = 0
    may_wait = DEFERRED.may_wait()
    part = part_size()
    try:
        for change in batch:
            if change.context is not context:  # a bulk statement's rows share one: set it once
                if token is not None:
                    reset_context(token)
                context = change.context
                token = set_context(context if settled is None else settled.get(id(context), context))
            for resource_id, diff in _events(change, pipeline.redactor):
                emitted += 1
                if emitted % part == 0 and may_wait and not _flush(pipeline):
                    part = MAX_PART
                record_change(
                    change.action,
                    change.resource_type,
                    resource_id,
                    diff,
                    change.extra,
                    pipeline,
                    timestamp,
                    trace_context,
                )
    except Exception as exc:
        note_error(exc)
    finally:
        if token is not None:
            reset_context(token)


def _events(change: Job, redactor: Any) -> Iterator[tuple[str, str | None]]:
    """``(resource_id, audit.changes JSON)`` of each event of ``change``; one whose changes cannot
    be serialised is counted as an error and left out."""
    if isinstance(change, Rows):
        for resource_id in change.ids():
            yield resource_id, change.changes
        return
    if isinstance(change, Each):
        for row in change.rows:
            try:
                resource_id, diff = change.build(row)
                text = changes_json(diff, redactor)
            except Exception as exc:
                note_error(exc)
                continue
            yield resource_id, text
        return
    diff = change.changes
    try:
        if diff is not None and not isinstance(diff, str):
            diff = changes_json(diff, redactor)
    except Exception as exc:
        note_error(exc)
        return
    yield change.resource_id, diff
