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
    days = [us // _US_PER_DAY for us in created_us]
    policies: dict[str, tuple[int, int]] = {}
    for tenant in dict.fromkeys(tenants):
        keep = dt.timedelta(days=retain_days(tenant)).days
        policies[tenant] = (keep, dt.timedelta(days=hot_days(tenant)).days if hot_days else keep)
    if len(policies) == 1:
        ((keep, hot_keep),) = policies.values()
        retain = [day + keep for day in days]
        hot = retain if hot_keep == keep else [day + hot_keep for day in days]
    else:
        retain = [day + policies[tenant][0] for day, tenant in zip(days, tenants, strict=True)]
        hot = [day + policies[tenant][1] for day, tenant in zip(days, tenants, strict=True)]
    if days and not (
        _MIN_DAY <= min(retain) and max(retain) <= _MAX_DAY and _MIN_DAY <= min(hot) and max(hot) <= _MAX_DAY
    ):
        raise OverflowError("date value out of range")
    return retain, hot
