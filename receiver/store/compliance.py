"""The compliance summary of one tenant: which PCI DSS 10.2.1.x event categories were recorded
lately, and how complete the PCI DSS 10.2.2 fields are. One statement, constant SQL; the tenant
and the clock are bound parameters.

A category is a condition over the SPEC section 1 columns (verbs, outcomes, resource types and
event names emitters send). The conditions are the definitions shown in the UI, so an auditor
can see exactly what "failed logins" means here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from receiver.store.sql import EVENTS_TABLE, Statement, check_identifier

_AUDIT_LOG = "startsWith(event_name, 'audit.audit_log.')"


@dataclass(frozen=True, slots=True)
class Category:
    key: str
    label: str
    #: the requirement it evidences
    requirement: str
    #: what counts, in words (shown in the UI)
    definition: str
    condition: str
    #: the same events as searches (SPEC section 8 filters), OR'd; empty when the condition has
    #: no filter form (actor_type is not a search filter)
    searches: tuple[dict[str, list[str]], ...] = ()


CATEGORIES: tuple[Category, ...] = (
    Category(
        "logins",
        "Logins",
        "PCI DSS 10.2.1.5",
        "action = login, outcome = success",
        "action = 'login' AND outcome = 'success'",
        ({"action": ["login"], "outcome": ["success"]},),
    ),
    Category(
        "failed_logins",
        "Failed logins",
        "PCI DSS 10.2.1.4",
        "action = login, outcome = failure or denied",
        "action = 'login' AND outcome IN ('failure', 'denied')",
        ({"action": ["login"], "outcome": ["failure", "denied"]},),
    ),
    Category(
        "logouts",
        "Logouts",
        "PCI DSS 10.2.1.5",
        "action = logout",
        "action = 'logout'",
        ({"action": ["logout"]},),
    ),
    Category(
        "sensitive_reads",
        "Sensitive data reads",
        "PCI DSS 10.2.1.1",
        "action = read (reads of the audit log itself excluded)",
        f"action = 'read' AND NOT {_AUDIT_LOG}",
        ({"action": ["read"], "event_name": ["!audit.audit_log.*"]},),
    ),
    Category(
        "modifications",
        "Modifications",
        "PCI DSS 10.2.1.7 · HIPAA 164.312(b)",
        "action = create, update or delete",
        "action IN ('create', 'update', 'delete')",
        ({"action": ["create", "update", "delete"]},),
    ),
    Category(
        "permission_changes",
        "Permission changes",
        "PCI DSS 10.2.1.5",
        "action = grant or revoke, or a change to a role or permission",
        "action IN ('grant', 'revoke')"
        " OR (resource_type IN ('role', 'permission') AND action IN ('create', 'update', 'delete'))",
        (
            {"action": ["grant", "revoke"]},
            {"resource_type": ["role", "permission"], "action": ["create", "update", "delete"]},
        ),
    ),
    Category(
        "admin_actions",
        "Administrative actions",
        "PCI DSS 10.2.1.2",
        "actor type system, action execute, or an event named audit.admin.*",
        "actor_type = 'system' OR action = 'execute' OR startsWith(event_name, 'audit.admin.')",
    ),
    Category(
        "audit_log_access",
        "Access to audit logs",
        "PCI DSS 10.2.1.3",
        "event name audit.audit_log.* (otel-audit records every search, view and export)",
        _AUDIT_LOG,
        ({"event_name": ["audit.audit_log.*"]},),
    ),
)

#: PCI DSS 10.2.2: (key, label, what counts as present, condition for present).
REQUIRED_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("user", "User identification", "user_id not empty", "user_id != ''"),
    ("type", "Type of event", "event_name and action", "event_name != '' AND action != ''"),
    ("time", "Date and time", "created_at set", "toUnixTimestamp64Micro(created_at) > 0"),
    (
        "outcome",
        "Success or failure",
        "outcome success, failure or denied",
        "outcome IN ('success', 'failure', 'denied')",
    ),
    ("origin", "Origination", "ip_address or service_name", "ip_address != '' OR service_name != ''"),
    (
        "resource",
        "Affected data or resource",
        "resource_type and resource_id",
        "resource_type != '' AND resource_id != ''",
    ),
)

#: the fields whose missing events have a search form (SPEC section 8 cannot select an empty value)
FIELD_SEARCHES: dict[str, tuple[dict[str, list[str]], ...]] = {
    "outcome": ({"outcome": ["!success", "!failure", "!denied"]},),
}


def summary(database: str, tenant: str, now: dt.datetime) -> Statement:
    parts = ["count() AS total", "max(created_at) AS newest"]
    for cat in CATEGORIES:
        parts.append(
            f"countIf(({cat.condition}) AND created_at >= {{day_ago:DateTime64(6, 'UTC')}}) AS d_{cat.key}"
        )
        parts.append(
            f"countIf(({cat.condition}) AND created_at >= {{month_ago:DateTime64(6, 'UTC')}}) AS m_{cat.key}"
        )
        parts.append(f"maxIf(created_at, {cat.condition}) AS last_{cat.key}")
    for key, _, _, condition in REQUIRED_FIELDS:
        parts.append(f"countIf(NOT ({condition})) AS missing_{key}")
    sql = (
        f"SELECT {', '.join(parts)} FROM {check_identifier(database)}.{EVENTS_TABLE}"  # noqa: S608
        " WHERE tenant_id = {tenant:String}"
    )
    return Statement(
        sql,
        {
            "tenant": tenant,
            "day_ago": now - dt.timedelta(days=1),
            "month_ago": now - dt.timedelta(days=30),
        },
    )


def to_report(tenant: str, now: dt.datetime, row: dict[str, Any]) -> dict[str, Any]:
    """The statement's one row → the API's answer."""
    from receiver.model import iso_utc

    total = int(row["total"])

    def last(value: Any) -> str | None:
        # maxIf over no rows gives the epoch, not NULL
        if value is None or total == 0 or value.timestamp() <= 0:
            return None
        return iso_utc(value)

    return {
        "tenant": tenant,
        "generated_at": iso_utc(now),
        "total_events": total,
        "newest_event": last(row["newest"]),
        "categories": [
            {
                "key": cat.key,
                "label": cat.label,
                "requirement": cat.requirement,
                "definition": cat.definition,
                "last_24h": int(row[f"d_{cat.key}"]),
                "last_30d": int(row[f"m_{cat.key}"]),
                "last_seen": last(row[f"last_{cat.key}"]),
                "searches": list(cat.searches),
            }
            for cat in CATEGORIES
        ],
        "fields": [
            {
                "key": key,
                "label": label,
                "definition": definition,
                "missing": int(row[f"missing_{key}"]),
                "complete": int(row[f"missing_{key}"]) == 0,
                "searches": list(FIELD_SEARCHES.get(key, ())),
            }
            for key, label, definition, _ in REQUIRED_FIELDS
        ],
    }
