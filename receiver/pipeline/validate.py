"""Stage 4: one audit log record → its row (the columns of :data:`receiver.model.RECORD_COLUMNS`),
or the reason it is rejected.

Rejected records are reported through OTLP partial success; the rest of the request is kept.
Limits (documented in the README): values longer than MAX_VALUE_CHARS are cut with a marker,
attributes past MAX_ATTRIBUTES are dropped and counted in ``otel_audit.dropped_attributes``.

Two paths give the same row. :func:`to_row` first tries the common shape (plain strings within
their limits, a canonical UUID, at most MAX_ATTRIBUTES attributes) with a few checks per field;
anything else — a value to convert, cut or reject — goes to :func:`_general_row`, which applies
every rule in order, so rejection reasons and their precedence come from one place.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from otel_audit import attributes as A
from receiver.pipeline.auth import IngestIdentity
from receiver.pipeline.changes import MAX_CHANGES_CHARS, InvalidChanges, canonical_changes
from receiver.pipeline.decode import any_value, attribute_values

__all__ = ["MAX_ATTRIBUTES", "MAX_CHANGES_CHARS", "MAX_VALUE_CHARS", "MAPPED", "Rejected", "Row", "to_row"]

MAX_VALUE_CHARS = 16_384
MAX_ATTRIBUTES = 256
_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
#: DateTime64(6) holds 1900-01-01 .. 2299-12-31
_MAX_TIME_NS = int((dt.datetime(2299, 12, 31, 23, 59, 59, tzinfo=_UTC) - _EPOCH).total_seconds()) * 10**9
#: already in the form str(uuid.UUID(x)) gives: keep it as is
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_VERB = re.compile(r"^[a-z][a-z_]{0,63}$")
#: a verb _VERB accepts that _text leaves unchanged (``$`` also matches before a final newline)
_PLAIN_VERB = re.compile(r"[a-z][a-z_]{0,63}\Z")
_TRUNCATED = "…[TRUNCATED]"
_OUTCOMES = frozenset(A.OUTCOMES)
#: the SPEC's verbs: plain (_PLAIN_VERB matches them), known without running the regex
_KNOWN_VERBS = frozenset(A.ACTIONS + A.ACTOR_TYPES)

#: attributes that fill their own column; the rest go to the ``attributes`` map
MAPPED = frozenset(
    {
        A.EVENT_ID,
        A.TENANT_ID,
        A.USER_ID,
        A.USER_ID_ALIAS,
        A.ACTOR_TYPE,
        A.ACTION,
        A.OUTCOME,
        A.RESOURCE_TYPE,
        A.RESOURCE_ID,
        A.CHANGES,
        A.CLIENT_ADDRESS,
        A.USER_AGENT,
        A.SESSION_ID,
        A.HTTP_METHOD,
        A.HTTP_ROUTE,
        A.HTTP_STATUS,
        A.EVENT_NAME_ATTR,
    }
)

#: one record's columns, in the order of receiver.model.RECORD_COLUMNS
Row = tuple[Any, ...]
_ABSENT: Any = object()
_NO_ATTRIBUTES: tuple[tuple[str, str], ...] = ()
# module-level names: the fast path reads them as globals, not module attributes
_EVENT_ID, _TENANT_ID, _USER_ID, _USER_ID_ALIAS = A.EVENT_ID, A.TENANT_ID, A.USER_ID, A.USER_ID_ALIAS
_ACTOR_TYPE, _ACTION, _OUTCOME, _RESOURCE_TYPE = A.ACTOR_TYPE, A.ACTION, A.OUTCOME, A.RESOURCE_TYPE
_RESOURCE_ID, _CHANGES, _CLIENT_ADDRESS, _USER_AGENT = (
    A.RESOURCE_ID,
    A.CHANGES,
    A.CLIENT_ADDRESS,
    A.USER_AGENT,
)
_SESSION_ID, _HTTP_METHOD, _HTTP_ROUTE, _HTTP_STATUS = (
    A.SESSION_ID,
    A.HTTP_METHOD,
    A.HTTP_ROUTE,
    A.HTTP_STATUS,
)
_DEFAULT_OUTCOME, _DEFAULT_ACTOR_TYPE = A.DEFAULT_OUTCOME, A.DEFAULT_ACTOR_TYPE


class Rejected(ValueError):
    """This record cannot be stored; the message is the reason given to the client."""


class TenantMismatch(Rejected):
    """The record claims a tenant other than its ingest token's (``claimed``: that tenant id)."""

    def __init__(self, message: str, claimed: str) -> None:
        super().__init__(message)
        self.claimed = claimed


def _text(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    if type(value) is str and len(value) <= limit and "\x00" not in value:
        return value  # the common case, first
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value) if isinstance(value, float) else str(value)
    elif isinstance(value, bytes):
        text = value.hex()
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if len(text) > limit:
        text = text[:limit] + _TRUNCATED
    return text


def _changes(value: Any) -> str:
    try:
        return canonical_changes(value)
    except InvalidChanges as exc:
        raise Rejected(str(exc)) from exc


def _created_us(record: LogRecord) -> int:
    """The event time in integer microseconds since the epoch (what the Arrow column holds)."""
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    if nanos == 0:
        raise Rejected("time_unix_nano is 0 (the event time is required)")
    if nanos > _MAX_TIME_NS:
        raise Rejected("time_unix_nano is after 2299-12-31, outside the storable range")
    return nanos // 1000


def _http_status(status: Any) -> int:
    try:
        http_status = int(status) if status not in (None, "") else 0
    except (TypeError, ValueError):
        http_status = 0
    return http_status if 0 <= http_status <= 65535 else 0


def _reason(record: LogRecord) -> str:
    """The body, when it is a string: the human-readable reason."""
    body = any_value(record.body)
    return _text(body) if isinstance(body, str) else ""


def to_row(record: LogRecord, event_name: str, identity: IngestIdentity) -> Row:
    """The record's columns, or :class:`Rejected` with the reason."""
    if len(record.attributes) > MAX_ATTRIBUTES:
        return _general_row(record, event_name, identity)
    values = attribute_values(record)
    get = values.get
    # Each check below holds exactly when _general_row would take the value as it is; any
    # other value (absent, not a string, too long, with NUL, to reject) goes the general way.
    event_id = get(_EVENT_ID)
    claimed = get(_TENANT_ID, "")
    user_id = get(_USER_ID, _ABSENT)
    if user_id is _ABSENT:
        user_id = get(_USER_ID_ALIAS)
    action = get(_ACTION)
    outcome = get(_OUTCOME, "")
    actor_type = get(_ACTOR_TYPE, "")
    resource_type = get(_RESOURCE_TYPE, "")
    resource_id = get(_RESOURCE_ID, "")
    ip_address = get(_CLIENT_ADDRESS, "")
    user_agent = get(_USER_AGENT, "")
    session_id = get(_SESSION_ID, "")
    http_method = get(_HTTP_METHOD, "")
    http_route = get(_HTTP_ROUTE, "")
    try:  # one pass for "all strings, no NUL"; the total length spares most length checks
        text = "".join(
            (
                event_id,
                claimed,
                user_id,
                action,
                outcome,
                actor_type,
                resource_type,
                resource_id,
                ip_address,
                user_agent,
                session_id,
                http_method,
                http_route,
                event_name,
            )
        )
    except TypeError:
        return _general_row(record, event_name, identity)
    size = len(text)
    if (
        "\x00" in text
        or len(ip_address) > 64
        or len(http_method) > 16
        or (
            size > 256
            and (
                len(claimed) > 256
                or len(resource_type) > 256
                or len(session_id) > 256
                or len(event_name) > 256
                or (
                    size > 1024
                    and (
                        len(user_id) > 1024
                        or len(resource_id) > 1024
                        or len(user_agent) > 1024
                        or len(http_route) > 1024
                    )
                )
            )
        )
        or not _CANONICAL_UUID.match(event_id)
        or not resource_type
        or (action not in _KNOWN_VERBS and not _PLAIN_VERB.match(action))
    ):
        return _general_row(record, event_name, identity)
    tenant = identity.tenant
    if tenant is None:
        if not claimed:
            return _general_row(record, event_name, identity)
        tenant = claimed
    elif claimed and claimed != tenant:
        return _general_row(record, event_name, identity)
    if outcome not in _OUTCOMES:
        if outcome:
            return _general_row(record, event_name, identity)
        outcome = _DEFAULT_OUTCOME
    if not actor_type:
        actor_type = _DEFAULT_ACTOR_TYPE
    elif actor_type not in _KNOWN_VERBS and not _PLAIN_VERB.match(actor_type):
        return _general_row(record, event_name, identity)
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    if not 0 < nanos <= _MAX_TIME_NS:
        return _general_row(record, event_name, identity)  # which gives the reason
    if values.keys() <= MAPPED:
        extra: Any = _NO_ATTRIBUTES
    else:
        extra = []
        for key, value in values.items():
            if key not in MAPPED:
                if len(key) > 256 or "\x00" in key:  # cut or cleaned keys may collide: general way
                    return _general_row(record, event_name, identity)
                extra.append((key, _text(value)))
    status = get(_HTTP_STATUS)
    if type(status) is not int or not 0 <= status <= 65535:
        status = _http_status(status)
    try:
        changes = canonical_changes(get(_CHANGES))
    except InvalidChanges as exc:
        raise Rejected(str(exc)) from exc
    trace_id = record.trace_id
    span_id = record.span_id
    return (
        event_id,
        tenant,
        user_id,
        actor_type,
        action,
        outcome,
        resource_type,
        resource_id,
        event_name,
        changes,
        ip_address,
        user_agent,
        nanos // 1000,
        trace_id.hex() if len(trace_id) == 16 else "",
        span_id.hex() if len(span_id) == 8 else "",
        session_id,
        http_method.upper(),
        http_route,
        status,
        _reason(record) if record.HasField("body") else "",
        extra,
    )


def _general_row(record: LogRecord, event_name: str, identity: IngestIdentity) -> Row:
    """Every rule, in the order that decides which reason a bad record gets."""
    attrs: dict[str, Any] = {}
    extra: dict[str, str] = {}
    dropped = 0
    for kv in record.attributes:
        key = kv.key
        value = kv.value
        decoded = value.string_value if value.WhichOneof("value") == "string_value" else any_value(value)
        if key in MAPPED:
            attrs[key] = decoded
        elif len(extra) < MAX_ATTRIBUTES:
            extra[_text(key, 256)] = _text(decoded)
        else:
            dropped += 1
    if dropped:
        extra["otel_audit.dropped_attributes"] = str(dropped)

    raw_id = attrs.get(A.EVENT_ID)
    if not raw_id:
        raise Rejected(f"{A.EVENT_ID} is missing")
    try:
        if isinstance(raw_id, str) and _CANONICAL_UUID.match(raw_id):
            event_id = raw_id
        else:
            event_id = str(uuid.UUID(str(raw_id)))
    except ValueError as exc:
        raise Rejected(f"{A.EVENT_ID} {str(raw_id)[:64]!r} is not a UUID") from exc

    claimed = _text(attrs.get(A.TENANT_ID), 256)
    if identity.tenant is not None:
        if claimed and claimed != identity.tenant:
            raise TenantMismatch(f"{A.TENANT_ID} does not match the tenant of the ingest token", claimed)
        tenant = identity.tenant
    elif claimed:
        tenant = claimed
    else:
        raise Rejected(f"{A.TENANT_ID} is missing (required when ingest is not token-authenticated)")

    if A.USER_ID in attrs:
        user_id = _text(attrs[A.USER_ID], 1024)
    elif A.USER_ID_ALIAS in attrs:
        user_id = _text(attrs[A.USER_ID_ALIAS], 1024)
    else:
        raise Rejected(f'{A.USER_ID} is missing (send "" for an anonymous actor)')

    action = _text(attrs.get(A.ACTION), 64)
    if not action:
        raise Rejected(f"{A.ACTION} is missing")
    if not _VERB.match(action):
        raise Rejected(f"{A.ACTION} {action!r} must be lowercase letters and '_'")
    outcome = _text(attrs.get(A.OUTCOME), 64) or A.DEFAULT_OUTCOME
    if outcome not in A.OUTCOMES:
        raise Rejected(f"{A.OUTCOME} {outcome!r} must be one of {', '.join(A.OUTCOMES)}")
    actor_type = _text(attrs.get(A.ACTOR_TYPE), 64) or A.DEFAULT_ACTOR_TYPE
    if not _VERB.match(actor_type):
        raise Rejected(f"{A.ACTOR_TYPE} {actor_type!r} must be lowercase letters and '_'")
    resource_type = _text(attrs.get(A.RESOURCE_TYPE), 256)
    if not resource_type:
        raise Rejected(f"{A.RESOURCE_TYPE} is missing")

    return (
        event_id,
        tenant,
        user_id,
        actor_type,
        action,
        outcome,
        resource_type,
        _text(attrs.get(A.RESOURCE_ID), 1024),
        _text(event_name, 256),
        _changes(attrs.get(A.CHANGES)),
        _text(attrs.get(A.CLIENT_ADDRESS), 64),
        _text(attrs.get(A.USER_AGENT), 1024),
        _created_us(record),
        record.trace_id.hex() if len(record.trace_id) == 16 else "",
        record.span_id.hex() if len(record.span_id) == 8 else "",
        _text(attrs.get(A.SESSION_ID), 256),
        _text(attrs.get(A.HTTP_METHOD), 16).upper(),
        _text(attrs.get(A.HTTP_ROUTE), 1024),
        _http_status(attrs.get(A.HTTP_STATUS)),
        _reason(record) if record.HasField("body") else "",
        list(extra.items()),
    )
