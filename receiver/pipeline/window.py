"""Stage 4b: the event times the store keeps, so that an acknowledged event is a stored one.

The events table deletes a row once its ``retain_until`` day (creation day + the tenant's
``retain_days``) has begun, and does so on insert for a row already past it: such an event was
acknowledged, given a chain position, then never stored. So a record is rejected (OTLP partial
success, naming the limit) when

- its retention ends within :data:`EXPIRY_MARGIN` of now (older than the tenant's retention,
  ``time_unix_nano = 1``, ...): the margin covers the commit interval and a store that is
  briefly down; a longer outage is handled at commit (:func:`expired_rows`);
- it lies more than :data:`MAX_FUTURE_SKEW` ahead of the receiver's clock (a broken clock: the
  event would sort after every real one and never reach the archive).

Days are UTC days, as the TTL computes them on a store whose timezone is UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from receiver.pipeline.enrich import RetainDays
from receiver.pipeline.validate import Rejected
from receiver.store import retention_sql

MAX_FUTURE_SKEW = dt.timedelta(hours=1)
EXPIRY_MARGIN = dt.timedelta(hours=1)
#: at commit: rows whose retention ends this close are due for deletion on insert
COMMIT_MARGIN = dt.timedelta(minutes=1)
_US = dt.timedelta(microseconds=1)
_DAY_US = dt.timedelta(days=1) // _US
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _iso(us: int) -> str:
    return (_EPOCH + dt.timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%SZ")


class TimeWindow:
    """The accepted event times of one request, at ``now_us``; a tenant's policy asked once."""

    def __init__(self, now_us: int, retain_days: RetainDays) -> None:
        self._now_us = now_us
        self._retain_days = retain_days
        self._newest = now_us + MAX_FUTURE_SKEW // _US
        # a row lives while its retain_until day has not begun: day * DAY > now + margin
        self._margin_day = (now_us + EXPIRY_MARGIN // _US) // _DAY_US
        self._oldest: dict[str, tuple[int, int]] = {}

    def check(self, tenant: str, created_us: int) -> None:
        """Raise :class:`Rejected` when the store would not keep an event of ``tenant`` at ``created_us``."""
        if created_us > self._newest:
            raise Rejected(
                f"time_unix_nano {_iso(created_us)} is more than {_hours(MAX_FUTURE_SKEW)} ahead of the "
                f"receiver's clock ({_iso(self._now_us)})"
            )
        policy = self._oldest.get(tenant)
        if policy is None:
            days = dt.timedelta(days=self._retain_days(tenant)).days
            policy = self._oldest[tenant] = (days, (self._margin_day - days + 1) * _DAY_US)
        days, oldest = policy
        if created_us < oldest:
            raise Rejected(
                f"time_unix_nano {_iso(created_us)} is older than tenant {tenant[:64]!r} keeps events "
                f"(retain_days {days}; the oldest time accepted now is {_iso(oldest)}): it would be "
                "deleted on arrival"
            )


def _hours(span: dt.timedelta) -> str:
    hours = span // dt.timedelta(hours=1)
    return f"{hours} hour" + ("" if hours == 1 else "s")


def expired_mask(table: pa.Table, now: dt.datetime) -> pa.ChunkedArray | None:
    """True for the rows whose ``retain_until`` has begun (or begins within COMMIT_MARGIN):
    the TTL would delete them on insert. None when there are none (the common case)."""
    if "retain_until" not in table.column_names or table.num_rows == 0:
        return None
    limit_day = (now + COMMIT_MARGIN - _EPOCH) // dt.timedelta(days=1)
    days = pc.cast(table.column("retain_until"), pa.int32())
    mask = pc.less_equal(days, pa.scalar(limit_day, pa.int32()))
    return mask if pc.any(mask).as_py() else None


def expired_rows(store: Any, table: pa.Table, now: dt.datetime) -> list[bool] | None:
    """At commit: the rows to leave out because their retention ran out while they waited in
    the journal (the TTL would delete them on insert, after they took a chain position). Rows of
    a tenant on legal hold are kept (the hold's TTL keeps them); when the holds cannot be read,
    every row is kept. None: nothing expired (the common case)."""
    mask = expired_mask(table, now)
    if mask is None:
        return None
    try:
        holds = store.query_table(retention_sql.current_holds(store.database))
        held = set(holds.column("tenant_id").to_pylist())
    except Exception:  # noqa: BLE001 - no holds table or no grant: keep the rows, as before
        return None
    tenants = table.column("tenant_id").to_pylist()
    flags = [bool(x) and t not in held for x, t in zip(mask.to_pylist(), tenants, strict=True)]
    return flags if any(flags) else None
