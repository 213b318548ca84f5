"""Stage 5: the receiver's own columns: when it accepted the event, which service sent it,
and until when the hot store and the archive keep it (the tenant's retention policy)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from receiver.model import AuditEvent

RetainDays = Callable[[str], int]


def enrich(
    event: AuditEvent,
    *,
    service_name: str,
    received_at: dt.datetime,
    retain_days: RetainDays,
    hot_days: RetainDays | None = None,
) -> None:
    event.received_at = received_at
    event.service_name = service_name[:256]
    day = event.created_at.date()
    event.retain_until = day + dt.timedelta(days=retain_days(event.tenant_id))
    event.hot_until = day + dt.timedelta(days=hot_days(event.tenant_id)) if hot_days else event.retain_until
