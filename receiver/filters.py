"""Search filters (SPEC section 3): parsed and validated once, shared by the CLI, the API and the store.

Nothing here builds SQL: the store turns an :class:`EventFilter` into bound query parameters.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

UTC = dt.timezone.utc
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
#: Filter names, as CLI flags (``--resource-type``) and API query parameters (``resource_type``).
FILTER_NAMES = (
    "tenant",
    "user",
    "action",
    "outcome",
    "resource_type",
    "resource_id",
    "ip",
    "event_name",
    "since",
    "until",
    "q",
)
_MAX_VALUE_LEN = 4096


class FilterError(ValueError):
    """A filter value a user gave is not valid; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Keyset position: the (created_at, id) of the last row of the previous page."""

    created_at: dt.datetime
    event_id: str

    def encode(self) -> str:
        micros = int(self.created_at.timestamp() * 1_000_000) if self.created_at else 0
        raw = f"{micros}:{self.event_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            micros_text, event_id = raw.split(":", 1)
            micros = int(micros_text)
            event_id = str(uuid.UUID(event_id))
            created = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=micros)
        except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError) as exc:
            raise FilterError("cursor: not a cursor this server issued") from exc
        return cls(created, event_id)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What to search for. ``tenants`` is the caller's scope (None = every tenant)."""

    tenant: str | None = None
    user: str | None = None
    action: str | None = None
    outcome: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    ip: str | None = None
    event_name: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    q: str | None = None
    tenants: tuple[str, ...] | None = None

    def scoped(self, tenants: tuple[str, ...] | None) -> EventFilter:
        """The same filter limited to ``tenants`` (None: no limit)."""
        return replace(self, tenants=tenants)

    def visible_nothing(self) -> bool:
        """True when the asked-for tenant is outside the scope: the answer is empty, never data."""
        return self.tenants is not None and self.tenant is not None and self.tenant not in self.tenants


#: ClickHouse DateTime64's range: a time outside it is refused here, not by the engine
MIN_TIME = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
MAX_TIME = dt.datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc)


def parse_time(name: str, text: str) -> dt.datetime:
    """ISO 8601 (``2026-01-31``, ``2026-01-31T10:00:00Z``, offsets allowed); naive means UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise FilterError(f"{name}: {text!r} is not an ISO 8601 date or time") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError as exc:
        raise FilterError(f"{name}: {text!r} is outside 1900-01-01 .. 2299-12-31") from exc
    if not MIN_TIME <= parsed <= MAX_TIME:
        raise FilterError(f"{name}: {text!r} is outside 1900-01-01 .. 2299-12-31 (UTC)")
    return parsed


def parse_filters(params: Mapping[str, str | None], *, allow_extra: tuple[str, ...] = ()) -> EventFilter:
    """Validate user-given filter values; unknown names are an error, not silently ignored."""
    unknown = sorted(set(params) - set(FILTER_NAMES) - set(allow_extra))
    if unknown:
        raise FilterError(f"unknown parameter(s): {', '.join(unknown)}")
    values: dict[str, object] = {}
    for name in FILTER_NAMES:
        raw = params.get(name)
        if raw is None or raw == "":
            continue
        if len(raw) > _MAX_VALUE_LEN:
            raise FilterError(f"{name}: longer than {_MAX_VALUE_LEN} characters")
        if "\x00" in raw:
            raise FilterError(f"{name}: contains a NUL character")
        values[name] = parse_time(name, raw) if name in ("since", "until") else raw
    flt = EventFilter(**values)  # type: ignore[arg-type]
    if flt.since and flt.until and flt.since >= flt.until:
        raise FilterError("since must be before until")
    return flt


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError as exc:
        raise FilterError(f"limit: {raw!r} is not a whole number") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise FilterError(f"limit: must be between 1 and {MAX_LIMIT}")
    return limit


def filter_to_params(flt: EventFilter) -> dict[str, str]:
    """The inverse of parse_filters, for sending a filter to a running server."""
    out: dict[str, str] = {}
    for f in fields(flt):
        value = getattr(flt, f.name)
        if f.name == "tenants" or value is None:
            continue
        out[f.name] = value.isoformat() if isinstance(value, dt.datetime) else str(value)
    return out
