"""Stage 5: the receiver's own columns: when it accepted the request, which service sent it, and
until when the hot store and the archive keep each event (its tenant's retention policy).

Dates are Arrow ``date32`` day numbers (days since 1970-01-01); a tenant's policy is asked once
a request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

RetainDays = Callable[[str], int]

SERVICE_NAME_CHARS = 256
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_US_PER_DAY = 86_400_000_000
#: day numbers a date can have (``date + timedelta`` raises past them)
_MIN_DAY = dt.date.min.toordinal() - _EPOCH_ORDINAL
_MAX_DAY = dt.date.max.toordinal() - _EPOCH_ORDINAL


def received_at_us(now: dt.datetime) -> int:
    """``now`` (aware) as integer microseconds since the epoch, the Arrow timestamp's value."""
    return (now - _EPOCH) // dt.timedelta(microseconds=1)


def service_name(name: str) -> str:
    return name[:SERVICE_NAME_CHARS]


def retention_days(
    tenants: Sequence[str],
    created_us: Sequence[int],
    retain_days: RetainDays,
    hot_days: RetainDays | None = None,
) -> tuple[list[int], list[int]]:
    """(retain_until, hot_until) day numbers for each event: its creation day plus its tenant's
    ``retain_days`` / ``hot_days`` (without ``hot_days``, hot_until is retain_until)."""
    policies: dict[str, tuple[int, int]] = {}
    retain: list[int] = []
    hot: list[int] = []
    for tenant, us in zip(tenants, created_us, strict=True):
        policy = policies.get(tenant)
        if policy is None:
            keep = dt.timedelta(days=retain_days(tenant)).days
            policy = policies[tenant] = (keep, dt.timedelta(days=hot_days(tenant)).days if hot_days else keep)
        day = us // _US_PER_DAY
        retain_until = day + policy[0]
        hot_until = day + policy[1]
        if not (_MIN_DAY <= retain_until <= _MAX_DAY and _MIN_DAY <= hot_until <= _MAX_DAY):
            raise OverflowError("date value out of range")
        retain.append(retain_until)
        hot.append(hot_until)
    return retain, hot
