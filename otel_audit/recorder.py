"""``record()``: turn one audited action into one OpenTelemetry log record, fast and without raising.

The record carries ``event_name = "audit.<resource_type>.<action>"``, a fresh ``audit.event.id``
(returned), the SPEC section 1 attributes, the request context (see ``otel_audit.context``) and
the current trace context. The attributes are built on the caller's thread; the source stamp and
the SDK's ``logger.emit`` (most of the cost) run on the deferred worker (``otel_audit.deferred``)
with the call's time and trace context, in call order with every other event of the process.
Failures are counted in ``stats()`` and logged once at debug level; they never reach the
application.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from os import urandom
from time import time_ns
from typing import Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context, get_current

from otel_audit import attributes as attr
from otel_audit.context import CONTEXT_FIELDS, FIELD_TO_ATTRIBUTE, _current, current_context
from otel_audit.deferred import DEFERRED
from otel_audit.diff import Redactor, build_changes, dumps, json_safe
from otel_audit.pipeline import STATE
from otel_audit.source import SOURCE

_log = logging.getLogger(__name__)
_SEVERITY = SeverityNumber.INFO
_SEVERITY_TEXT = "INFO"
_PRIMITIVES = (str, bool, int, float)


@dataclass
class EmitterStats:
    """Module-level counters: events handed to the SDK, and events lost to an error."""

    emitted: int = 0
    errors: int = 0
    last_error: str | None = None


_stats = EmitterStats()
_error_logged = False


def stats() -> EmitterStats:
    """A copy of the emitter counters."""
    return replace(_stats)


def new_event_id() -> str:
    """A random (version 4) UUID in canonical text, like ``str(uuid.uuid4())`` (this runs on every
    audited request: the random bytes are read ``_ID_BATCH`` ids at a time, one ``getrandom``
    call instead of one per event; a forked child drops the ids its parent had read ahead)."""
    while True:
        try:
            return _pending_ids.pop()
        except IndexError:  # empty (or emptied by another thread meanwhile): read another batch
            _pending_ids.extend(_make_event_ids(_ID_BATCH))


def _make_event_ids(n: int) -> list[str]:
    h = urandom(16 * n).hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-{_VARIANT[h[i + 16]]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]


#: the RFC 4122 variant bits (10xx) over the random nibble's low two bits
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_ID_BATCH = 64
_pending_ids: list[str] = []
# a child must not hand out the ids its parent read ahead (or the parent's next ids)
os.register_at_fork(after_in_child=_pending_ids.clear)


def record(
    action: str,
    resource_type: str,
    resource_id: Any = "",
    changes: Mapping[str, Any] | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    outcome: str = attr.DEFAULT_OUTCOME,
    reason: str | None = None,
    **attributes: Any,
) -> str:
    """Emit one audit event; return its ``audit.event.id`` (``""`` if it could not be built; the
    SDK part runs on the deferred worker, where a failure is counted in ``stats()``).

    ``before``/``after`` produce the ``audit.changes`` diff; ``changes`` (``{"field": {"old": …,
    "new": …}}``, or ``{"field": new_value}``) is laid over it; both are redacted. ``reason`` becomes
    the record body. Keyword arguments named like an ``AuditContext`` field (``user_id``,
    ``tenant_id``, ``actor_type``, ``ip_address``, ``user_agent``, ``session_id``, ``http_method``,
    ``http_route``, ``http_status``) override the request context (``None`` = not given; ``""`` is
    a value). ``attributes={"dotted.name": v}`` and any other keyword add attributes as named.
    """
    try:
        if not action or not resource_type:
            raise ValueError("record() needs a non-empty action and resource_type")
        pipeline = STATE.pipeline
        event_id = new_event_id()
        out = _base_attributes(
            event_id,
            action,
            resource_type,
            resource_id if isinstance(resource_id, str) else str(resource_id),
            outcome,
        )
        current_context().write_attributes(out)
        if attributes:
            _apply_keywords(out, attributes, pipeline.redactor)
        if changes or before is not None or after is not None:
            diff = build_changes(before, after, changes, pipeline.redactor)
            if diff:
                out[attr.CHANGES] = dumps(diff)
        return _defer(pipeline, out, event_id, resource_type, action, reason)
    except Exception as exc:  # never raise into the application
        note_error(exc)
        return ""


def _base_attributes(
    event_id: str, action: str, resource_type: str, resource_id: str, outcome: str
) -> dict[str, Any]:
    """The attributes every event starts with, in wire order (context and keywords follow)."""
    return {
        attr.EVENT_ID: event_id,
        attr.ACTION: action,
        attr.RESOURCE_TYPE: resource_type,
        attr.RESOURCE_ID: resource_id,
        attr.OUTCOME: outcome,
        attr.USER_ID: "",
        attr.ACTOR_TYPE: attr.DEFAULT_ACTOR_TYPE,
    }


def _emit(
    pipeline: Any,
    out: dict[str, Any],
    event_id: str,
    resource_type: str,
    action: str,
    reason: str | None,
    timestamp: int | None = None,
    context: Context | None = None,
) -> str:
    """Hand one event to the SDK (the batch processor only enqueues it) and count it. A deferred
    event passes the ``timestamp`` and trace ``context`` of the moment it happened."""
    SOURCE.stamp(out)
    pipeline.logger.emit(
        timestamp=time_ns() if timestamp is None else timestamp,
        context=context,
        severity_number=_SEVERITY,
        severity_text=_SEVERITY_TEXT,
        body=reason,
        attributes=out,
        event_name=f"{attr.EVENT_NAME_PREFIX}{resource_type}.{action}",
    )
    _stats.emitted += 1
    return event_id


def _defer(
    pipeline: Any, out: dict[str, Any], event_id: str, resource_type: str, action: str, reason: str | None
) -> str:
    """Queue the SDK part of one event for the deferred worker (the caller's thread emits it itself
    when the queue is full), with the time and trace context of now."""
    DEFERRED.submit(
        _emit_job, (pipeline, out, event_id, resource_type, action, reason, time_ns(), get_current()), 1
    )
    return event_id


def _emit_job(job: tuple[Any, dict[str, Any], str, str, str, str | None, int, Context]) -> None:
    """``_emit`` on the deferred worker. Never raises (an SDK failure is counted)."""
    try:
        _emit(*job)
    except Exception as exc:
        note_error(exc)


def _apply_keywords(out: dict[str, Any], keywords: Mapping[str, Any], redactor: Redactor) -> None:
    for key, value in keywords.items():
        if value is None:
            continue
        if key in CONTEXT_FIELDS:
            name = FIELD_TO_ATTRIBUTE.get(key)
            if name is not None:
                out[name] = value
        elif key == "attributes" and isinstance(value, Mapping):
            for name, extra in value.items():
                if extra is not None:
                    out[str(name)] = _attribute_value(str(name), extra, redactor)
        else:
            out[key] = _attribute_value(key, value, redactor)


def record_request(
    action: str,
    resource_type: str,
    resource_id: str,
    outcome: str,
    reason: str | None,
    user_id: str | None,
    tenant_id: str | None,
    http_route: str,
    http_status: int | None,
    context_route: str | None = None,
) -> str:
    """The ASGI middleware's event: exactly ``record(action=…, resource_type=…, resource_id=…,
    outcome=…, reason=…, user_id=…, tenant_id=…, http_route=…, http_status=…)`` (same attributes,
    same order) without the keyword packing. ``context_route``: what the current context's route
    resolver would answer, when the caller knows it (then it is not asked). Never raises."""
    try:
        if not action or not resource_type:
            raise ValueError("record() needs a non-empty action and resource_type")
        event_id = new_event_id()
        out = _base_attributes(event_id, action, resource_type, resource_id, outcome)
        _current.get().write_attributes(out, context_route)
        if user_id is not None:
            out[attr.USER_ID] = user_id
        if tenant_id is not None:
            out[attr.TENANT_ID] = tenant_id
        out[attr.HTTP_ROUTE] = http_route
        if http_status is not None:
            out[attr.HTTP_STATUS] = http_status
        return _defer(STATE.pipeline, out, event_id, resource_type, action, reason)
    except Exception as exc:  # never raise into the application
        note_error(exc)
        return ""


def record_change(
    action: str,
    resource_type: str,
    resource_id: str,
    changes_json: str | None,
    extra: Mapping[str, Any] | None = None,
    pipeline: Any = None,
    timestamp: int | None = None,
    context: Context | None = None,
) -> str:
    """The ORM integrations' event (``otel_audit.sqlalchemy``, ``otel_audit.django``): like
    ``record(action, resource_type, resource_id, attributes=extra)`` with ``audit.changes`` already
    redacted and serialised (see ``changes_json``), without the keyword packing. Emitted later on
    the deferred worker (``otel_audit.model_changes``), it gets the ``pipeline``, ``timestamp`` and
    trace ``context`` of the commit. Never raises."""
    try:
        event_id = new_event_id()
        out = _base_attributes(event_id, action, resource_type, resource_id, attr.DEFAULT_OUTCOME)
        _current.get().write_attributes(out)
        if extra:
            out.update(extra)
        if changes_json:
            out[attr.CHANGES] = changes_json
        return _emit(
            pipeline or STATE.pipeline, out, event_id, resource_type, action, None, timestamp, context
        )
    except Exception as exc:  # never raise into the application
        note_error(exc)
        return ""


def changes_json(changes: Mapping[str, Mapping[str, Any]], redactor: Redactor | None = None) -> str | None:
    """``{"field": {"old": …, "new": …}}`` redacted (by default by the active redaction list), as
    wire JSON."""
    if not changes:
        return None
    if redactor is None:
        redactor = STATE.pipeline.redactor
    out: dict[str, dict[str, Any]] = {}
    for name, entry in changes.items():
        if redactor.is_sensitive(name):
            out[name] = {"old": attr.REDACTED, "new": attr.REDACTED}
        else:
            out[name] = {"old": json_safe(entry["old"], redactor), "new": json_safe(entry["new"], redactor)}
    return dumps(out)


def _attribute_value(name: str, value: Any, redactor: Redactor) -> Any:
    """An OTel-compatible attribute value: primitives and lists of them kept, the rest as JSON."""
    if redactor.is_sensitive(name):
        return attr.REDACTED
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return dumps(json_safe(value, redactor))


def note_error(exc: Exception) -> None:
    """Count a failure inside the emitter (also used by the middleware); log the first one at debug."""
    global _error_logged
    _stats.errors += 1
    _stats.last_error = f"{type(exc).__name__}: {exc}"
    if not _error_logged:
        _error_logged = True
        _log.debug("otel_audit: an audit event could not be emitted", exc_info=exc)
