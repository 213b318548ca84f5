"""The SQL endpoint's reads of audit data are themselves audit events (PCI DSS 10.2.1.3).

Each query that reads an audit table, and each query refused or failed, is recorded as
``audit.audit_log.read`` through the admin API's :class:`AccessTrail` (the same ingest path as
any emitter's) before the answer leaves: fail closed, as the admin API is. The actor is
``sql:<user>``; the SQL text (cut at 4 KiB) and the query id travel as attributes. Pings,
handshakes and metadata-only queries (``SELECT 1``, ``system.tables``) are not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from receiver.admin.access import Access
from receiver.admin.trail import AccessEvent, AccessTrail, tenants_read

MAX_RECORDED_SQL = 4096


@dataclass(frozen=True, slots=True)
class SqlAccess:
    user: str
    #: None: every tenant
    tenants: tuple[str, ...] | None
    text: str
    outcome: str  # success, denied or failure
    http_status: int
    query_id: str
    client_address: str = ""
    user_agent: str = ""
    http_method: str = "POST"


def record(trail: AccessTrail, access: SqlAccess) -> None:
    """Blocks until the event is durable; raises when it cannot be stored."""
    who = Access(name=f"sql:{access.user}", role="sql_reader", tenants=access.tenants)
    trail.record(
        AccessEvent(
            access=who,
            action="read",
            tenants=tenants_read(who, None),
            outcome=access.outcome,
            reason="query through the read-only SQL endpoint",
            client_address=access.client_address,
            user_agent=access.user_agent[:512],
            http_method=access.http_method,
            http_route="/",
            http_status=access.http_status,
            attributes={
                "audit.sql.query": access.text[:MAX_RECORDED_SQL],
                "audit.sql.query_id": access.query_id,
            },
        )
    )
