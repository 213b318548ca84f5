"""A small, fixed audit trail with the stories the dashboards exist to show (brute force,
a login from a new address, off-hours grants, bulk reads of patient records, an export,
auditors reading the audit log), in two tenants, for one week (Mon 2026-11-02 .. Mon 11-09)."""

from __future__ import annotations

import datetime as dt
import uuid

from receiver.model import AuditEvent

UTC = dt.timezone.utc
START = dt.datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
END = dt.datetime(2026, 11, 9, tzinfo=UTC)
RETAIN = dt.date(2030, 1, 1)


def _at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return START + dt.timedelta(days=day, hours=hour, minutes=minute, seconds=second)


def event(
    tenant: str, user: str, action: str, resource_type: str, resource_id: str, at: dt.datetime, **kw
) -> AuditEvent:
    kw.setdefault("outcome", "success")
    kw.setdefault("service_name", "app")
    return AuditEvent(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{user}/{action}/{resource_id}/{at.isoformat()}")),
        tenant_id=tenant,
        user_id=user,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        event_name=f"audit.{resource_type}.{action}",
        created_at=at,
        received_at=at,
        retain_until=RETAIN,
        **kw,
    )


def seed() -> list[AuditEvent]:
    ev: list[AuditEvent] = []
    # history before the range: where each user usually logs in from
    for user, ip in (("alice", "198.51.100.1"), ("bob", "198.51.100.2"), ("carol", "198.51.100.3")):
        ev.append(event("acme", user, "login", "session", "", _at(-10, 9), ip_address=ip))
    # Tue: alice logs in from her usual address and reads 20 documents
    ev.append(event("acme", "alice", "login", "session", "", _at(1, 9), ip_address="198.51.100.1"))
    for i in range(20):
        ev.append(
            event(
                "acme",
                "alice",
                "read",
                "document",
                f"doc-{i + 1}",
                _at(1, 10, i),
                ip_address="198.51.100.1",
                service_name="docs",
            )
        )
    # Wed 03:00: 12 failed logins from one address against three accounts (one anonymous)
    for i in range(12):
        tried = ("", "alice", "admin")[i % 3]
        ev.append(
            event(
                "acme",
                tried,
                "login",
                "user",
                tried,
                _at(2, 3, i),
                outcome="failure",
                ip_address="192.0.2.66",
                reason="bad password",
            )
        )
    # Wed 08:00: bob mistypes his password three times, then logs in; 5 invoice updates
    for i in range(3):
        ev.append(
            event(
                "acme",
                "bob",
                "login",
                "user",
                "bob",
                _at(2, 8, i),
                outcome="failure",
                ip_address="198.51.100.2",
            )
        )
    ev.append(event("acme", "bob", "login", "session", "", _at(2, 8, 5), ip_address="198.51.100.2"))
    for i in range(5):
        ev.append(
            event(
                "acme",
                "bob",
                "update",
                "invoice",
                "inv-1",
                _at(2, 11, i),
                service_name="billing",
                changes='{"amount": {"old": 10, "new": 12}}',
            )
        )
    # Thu: carol logs in from a NEW address; grants a role at 23:30 (off hours), revokes Fri 10:00
    ev.append(event("acme", "carol", "login", "session", "", _at(3, 9, 30), ip_address="203.0.113.9"))
    ev.append(
        event(
            "acme",
            "carol",
            "grant",
            "role",
            "role-admin",
            _at(3, 23, 30),
            changes='{"role": {"new": "admin"}}',
        )
    )
    ev.append(
        event(
            "acme", "carol", "revoke", "role", "role-admin", _at(4, 10), changes='{"role": {"old": "admin"}}'
        )
    )
    # Sat 12:00: bob deletes a document (weekend: off hours)
    ev.append(event("acme", "bob", "delete", "document", "doc-3", _at(5, 12)))
    # denied: dave tries to delete and to read what he may not
    for i, (action, rid) in enumerate(
        (("delete", "doc-9"), ("read", "doc-10"), ("update", "doc-10"), ("read", "doc-11"))
    ):
        ev.append(
            event(
                "acme",
                "dave",
                action,
                "document",
                rid,
                _at(3, 13, i),
                outcome="denied",
                reason="not in group",
            )
        )
    # Thu 14:00: dave reads 150 patient records within the hour, exports them at 15:00
    for i in range(150):
        ev.append(
            event(
                "acme",
                "dave",
                "read",
                "patient",
                f"patient-{i + 1}",
                _at(3, 14, i // 3, i % 3 * 20),
                service_name="ehr",
            )
        )
    ev.append(
        event(
            "acme", "dave", "export", "patient", "", _at(3, 15), service_name="ehr", reason="quarterly report"
        )
    )
    # erin reads two patient records (not bulk)
    for i in range(2):
        ev.append(
            event("acme", "erin", "read", "patient", f"patient-{i + 1}", _at(4, 9, i), service_name="ehr")
        )
    # Fri 16:00: an auditor searches and exports the audit log
    ev.append(event("acme", "frank", "read", "audit_log", "acme", _at(4, 16), actor_type="user"))
    ev.append(event("acme", "frank", "export", "audit_log", "acme", _at(4, 16, 5), actor_type="user"))
    # another tenant: 10 reads by gina and 2 failed logins from the same attacking address
    for i in range(10):
        ev.append(
            event("globex", "gina", "read", "document", f"g-doc-{i}", _at(2, 10, i), service_name="docs")
        )
    for i in range(2):
        ev.append(
            event(
                "globex",
                "gina",
                "login",
                "user",
                "gina",
                _at(2, 3, 30 + i),
                outcome="failure",
                ip_address="192.0.2.66",
            )
        )
    return ev


def in_range(events: list[AuditEvent]) -> list[AuditEvent]:
    return [e for e in events if START <= e.created_at <= END]
