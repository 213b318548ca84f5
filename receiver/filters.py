"""Search filters (SPEC sections 3 and 8): parsed and validated once, shared by the CLI, the API and the store.

A filter may be repeated (its values are OR'd); a value starting with ``!`` excludes; a value
ending in ``*`` matches a prefix; ``ip`` also takes a CIDR; ``since``/``until`` take ISO 8601 or
a time relative to now (``now``, ``now-15m``, ``now-24h``, ``now-7d``).

Nothing here builds SQL: the store turns an :class:`EventFilter` into bound query parameters.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Literal

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
#: the filters that take SPEC section 8's value forms (repeat, ``!``, ``*``; ``ip`` a CIDR too)
MATCH_NAMES = FILTER_NAMES[:8]
_MAX_VALUE_LEN = 4096
_MAX_VALUES = 64
_RELATIVE = re.compile(r"^now(?:\s*-\s*(\d{1,9})\s*([smhdw]))?$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

TermKind = Literal["equal", "prefix", "cidr"]


class FilterError(ValueError):
    """A filter value a user gave is not valid; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Term:
    """One value of a filter: ``kind`` says how it matches; ``negated`` for ``!`` values."""

    kind: TermKind
    value: str
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Match:
    """The values given for one filter, as given (``"x"``, ``"x*"``, ``"!x"``, ``"10.0.0.0/8"``)."""

    values: tuple[str, ...]

    @property
    def terms(self) -> tuple[Term, ...]:
        return tuple(_term(v) for v in self.values)

    @property
    def included(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if not t.negated)

    @property
    def excluded(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.negated)

    @property
    def single(self) -> str | None:
        """The value when exactly one plain value was given (the common ``tenant=acme``)."""
        terms = self.terms
        return (
            terms[0].value if len(terms) == 1 and terms[0].kind == "equal" and not terms[0].negated else None
        )

    def text(self) -> str:
        return ",".join(self.values)


def _term(raw: str) -> Term:
    negated = raw.startswith("!")
    value = raw[1:] if negated else raw
    if value.endswith("*"):
        return Term("prefix", value[:-1], negated)
    if "/" in value and _is_network(value):
        return Term("cidr", str(ipaddress.ip_network(value, strict=False)), negated)
    return Term("equal", value, negated)


def _is_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _as_match(value: object) -> Match | None:
    if value is None or isinstance(value, Match):
        return value
    if isinstance(value, str):
        return Match((value,))
    if isinstance(value, (tuple, list)):
        return Match(tuple(str(v) for v in value))
    raise TypeError(f"not a filter value: {value!r}")


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
    """What to search for. ``tenants`` is the caller's scope (None = every tenant).

    The match filters hold a :class:`Match`; a plain string or a list given to the constructor
    is taken as its value(s)."""

    tenant: Match | None = None
    user: Match | None = None
    action: Match | None = None
    outcome: Match | None = None
    resource_type: Match | None = None
    resource_id: Match | None = None
    ip: Match | None = None
    event_name: Match | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    q: str | None = None
    tenants: tuple[str, ...] | None = None
    #: fields the caller may not see (a viewer token's hidden fields: columns,
    #: ``attributes.<key>``, ``attributes.<prefix>*``): ``q`` does not read them and exports
    #: leave them out, so neither a search nor a download reveals what is hidden
    hidden: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in MATCH_NAMES:
            object.__setattr__(self, name, _as_match(getattr(self, name)))

    def scoped(self, tenants: tuple[str, ...] | None) -> EventFilter:
        """The same filter limited to ``tenants`` (None: no limit)."""
        return replace(self, tenants=tenants)

    @property
    def single_tenant(self) -> str | None:
        """The one tenant asked for by name, if that is what the filter says."""
        return self.tenant.single if self.tenant is not None else None

    def outside_scope(self) -> tuple[str, ...]:
        """Tenants named (plainly, not excluded) by the filter that the scope does not hold."""
        if self.tenants is None or self.tenant is None:
            return ()
        return tuple(
            t.value for t in self.tenant.included if t.kind == "equal" and t.value not in self.tenants
        )

    def visible_nothing(self) -> bool:
        """True when a tenant asked for by name is outside the scope: the answer is a refusal
        (or empty), never data."""
        return bool(self.outside_scope())


#: ClickHouse DateTime64's range: a time outside it is refused here, not by the engine
MIN_TIME = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
MAX_TIME = dt.datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc)


def parse_time(name: str, text: str, now: dt.datetime | None = None) -> dt.datetime:
    """ISO 8601 (``2026-01-31``, ``2026-01-31T10:00:00Z``, offsets allowed; naive means UTC) or
    relative to now (``now``, ``now-15m``: units s, m, h, d, w)."""
    value = text.strip()
    relative = _RELATIVE.match(value.lower())
    if relative:
        parsed = now or dt.datetime.now(UTC)
        amount, unit = relative.groups()
        if amount:
            try:
                parsed -= dt.timedelta(**{_UNITS[unit]: int(amount)})
            except OverflowError as exc:
                raise FilterError(f"{name}: {text!r} is too far in the past") from exc
    else:
        if value.endswith(("Z", "z")):
            value = value[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise FilterError(
                f"{name}: {text!r} is not an ISO 8601 date or time, nor now / now-<N><s|m|h|d|w>"
            ) from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise FilterError(f"{name}: {text!r} is outside 1900-01-01 .. 2299-12-31 (UTC)") from exc
    if not MIN_TIME <= parsed <= MAX_TIME:
        raise FilterError(f"{name}: {text!r} is outside 1900-01-01 .. 2299-12-31 (UTC)")
    return parsed


def _check_value(name: str, raw: str) -> str:
    if len(raw) > _MAX_VALUE_LEN:
        raise FilterError(f"{name}: longer than {_MAX_VALUE_LEN} characters")
    if "\x00" in raw:
        raise FilterError(f"{name}: contains a NUL character")
    return raw


def _check_term(name: str, raw: str) -> None:
    body = raw[1:] if raw.startswith("!") else raw
    if raw.startswith("!") and body == "":
        raise FilterError(f"{name}: '!' must be followed by a value")
    if name == "ip" and "/" in body and not body.endswith("*") and not _is_network(body):
        raise FilterError(f"{name}: {body!r} is not an IP address range (CIDR, e.g. 203.0.113.0/24)")


def _values(raw: str | Sequence[str] | None) -> list[str]:
    if raw is None:
        return []
    items = [raw] if isinstance(raw, str) else list(raw)
    return [v for v in items if v != ""]


def parse_filters(
    params: Mapping[str, str | Sequence[str] | None],
    *,
    allow_extra: tuple[str, ...] = (),
    now: dt.datetime | None = None,
) -> EventFilter:
    """Validate user-given filter values (a name may map to several values); unknown names are an
    error, not silently ignored."""
    unknown = sorted(set(params) - set(FILTER_NAMES) - set(allow_extra))
    if unknown:
        raise FilterError(f"unknown parameter(s): {', '.join(unknown)}")
    now = now or dt.datetime.now(UTC)
    values: dict[str, object] = {}
    for name in FILTER_NAMES:
        given = [_check_value(name, v) for v in _values(params.get(name))]
        if not given:
            continue
        if name in MATCH_NAMES:
            if len(given) > _MAX_VALUES:
                raise FilterError(f"{name}: more than {_MAX_VALUES} values")
            for raw in given:
                _check_term(name, raw)
            values[name] = Match(tuple(given))
            continue
        if len(given) > 1:
            raise FilterError(f"{name}: give it once")
        values[name] = parse_time(name, given[0], now) if name in ("since", "until") else given[0]
    flt = EventFilter(**values)  # type: ignore[arg-type]
    if flt.since and flt.until and flt.since >= flt.until:
        raise FilterError("since must be before until")
    return flt


def multi_params(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Query-string pairs (a name may repeat) as name -> values."""
    out: dict[str, list[str]] = {}
    for key, value in items:
        out.setdefault(key, []).append(value)
    return out


def parse_bounded(name: str, raw: str | None, default: int, high: int) -> int:
    """A whole-number parameter from 1 to ``high`` (``default`` when not given)."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise FilterError(f"{name}: {raw!r} is not a whole number") from exc
    if not 1 <= value <= high:
        raise FilterError(f"{name}: must be between 1 and {high}")
    return value


def parse_limit(raw: str | None) -> int:
    return parse_bounded("limit", raw, DEFAULT_LIMIT, MAX_LIMIT)


def check_match(match: Mapping[str, object], extra_keys: tuple[str, ...] = ("service_name",)) -> None:
    """A rule's or stream's ``match``/``filter`` mapping: search filters (any SPEC 8 form) plus
    ``extra_keys``; raises :class:`FilterError` naming what is wrong."""
    filters = {k: v for k, v in match.items() if k not in extra_keys}
    unknown = sorted(set(filters) - set(FILTER_NAMES))
    if unknown:
        raise FilterError(f"unknown key(s): {', '.join(unknown)}")
    parse_filters(filters)  # type: ignore[arg-type]


def filter_to_params(flt: EventFilter) -> dict[str, str | list[str]]:
    """The inverse of parse_filters, for sending a filter to a running server (httpx sends a list
    as a repeated parameter)."""
    out: dict[str, str | list[str]] = {}
    for f in fields(flt):
        value = getattr(flt, f.name)
        if f.name in ("tenants", "hidden") or value is None:  # the server sets these from the caller
            continue
        if isinstance(value, Match):
            out[f.name] = value.values[0] if len(value.values) == 1 else list(value.values)
        else:
            out[f.name] = value.isoformat() if isinstance(value, dt.datetime) else str(value)
    return out
