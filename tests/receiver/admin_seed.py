"""A known data set for the admin API, UI and export tests, sent through the real OTLP/gRPC
ingest path: two tenants, logins, a failed login, changes with a diff, permission changes, and
events whose values are XSS and spreadsheet-formula payloads."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from otlp_builders import audit_attrs, export, log_record, request

ACME_AUDITOR = "auditor-token-acme-0123456789"
GLOBEX_AUDITOR = "auditor-token-globex-0123456789"
ADMIN = "admin-token-all-tenants-0123456789"
ADMIN_TOKENS = [
    {"token": ACME_AUDITOR, "role": "auditor", "tenants": ["acme"], "name": "ada.auditor"},
    {"token": GLOBEX_AUDITOR, "role": "auditor", "tenants": ["globex"], "name": "gus.auditor"},
    {"token": ADMIN, "role": "admin", "tenants": ["*"], "name": "root.admin"},
]
XSS_USER = '<img src=x onerror="window.__xss=1">'
XSS_REASON = "<script>window.__xss=1</script>"
XSS_RESOURCE = "javascript:window.__xss=1"
FORMULA = '=HYPERLINK("http://evil.example","x")'
BULK = 30


@dataclass
class Seeded:
    base: dt.datetime
    ids: dict[str, str]
    acme_count: int
    globex_count: int


def _event(
    key: str, ids: dict[str, str], when: dt.datetime, *, event_name: str, body: Any = None, **attrs: Any
) -> Any:
    event_id = str(uuid.uuid4())
    ids[key] = event_id
    return log_record(
        audit_attrs(audit__event__id=event_id, **attrs),
        event_name=event_name,
        body=body,
        time_ns=int(when.timestamp() * 1_000_000) * 1000,
        trace_id=bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736"),
        span_id=bytes.fromhex("00f067aa0ba902b7"),
    )


def seed(grpc_endpoint: str, base: dt.datetime | None = None) -> Seeded:
    base = base or dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=6)
    ids: dict[str, str] = {}
    t = lambda minutes: base + dt.timedelta(minutes=minutes)  # noqa: E731
    acme = [
        _event(
            "login",
            ids,
            t(0),
            event_name="audit.user.login",
            audit__action="login",
            audit__resource__type="session",
            audit__resource__id="",
            enduser__id="alice",
            client__address="203.0.113.5",
            user_agent__original="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        ),
        _event(
            "failed_login",
            ids,
            t(1),
            event_name="audit.user.login",
            audit__action="login",
            audit__outcome="failure",
            audit__resource__type="session",
            audit__resource__id="",
            enduser__id="",
            client__address="198.51.100.7",
            body="bad password",
        ),
        _event(
            "update",
            ids,
            t(2),
            event_name="audit.invoice.update",
            audit__action="update",
            audit__resource__type="invoice",
            audit__resource__id="inv-7",
            enduser__id="bob",
            client__address="203.0.113.9",
            body="customer refund",
            audit__changes=json.dumps(
                {"amount": {"old": 10, "new": 12}, "status": {"old": "open", "new": "paid"}}
            ),
            ticket="INC-7",
        ),
        _event(
            "grant",
            ids,
            t(3),
            event_name="audit.role.grant",
            audit__action="grant",
            audit__resource__type="role",
            audit__resource__id="billing-admin",
            enduser__id="carol",
            client__address="203.0.113.5",
        ),
        _event(
            "xss",
            ids,
            t(4),
            event_name="audit.document.update",
            audit__action="update",
            audit__resource__type="document",
            audit__resource__id=XSS_RESOURCE,
            enduser__id=XSS_USER,
            client__address="203.0.113.66",
            body=XSS_REASON,
            audit__changes=json.dumps({"title": {"old": XSS_REASON, "new": FORMULA}}),
            note="<b>not bold</b>",
        ),
        _event(
            "formula",
            ids,
            t(5),
            event_name="audit.document.read",
            audit__action="read",
            audit__resource__type="document",
            audit__resource__id="@SUM(A1:A9)",
            enduser__id="+dave",
            client__address="203.0.113.5",
            body="-2+3",
        ),
        _event(
            "logout",
            ids,
            t(6),
            event_name="audit.user.logout",
            audit__action="logout",
            audit__resource__type="session",
            audit__resource__id="",
            enduser__id="alice",
            client__address="203.0.113.5",
        ),
    ]
    acme += [
        _event(
            f"bulk{i}",
            ids,
            t(10 + i),
            event_name="audit.document.read",
            audit__action="read",
            audit__resource__type="document",
            audit__resource__id=f"doc-{i}",
            enduser__id=f"svc-{i % 3}",
            client__address="10.1.0.2",
            audit__actor__type="service",
        )
        for i in range(BULK)
    ]
    globex = [
        _event(
            "globex_read",
            ids,
            t(2),
            event_name="audit.payment.read",
            audit__action="read",
            audit__tenant__id="globex",
            audit__resource__type="payment",
            audit__resource__id="pay-1",
            enduser__id="gina",
            client__address="192.0.2.10",
        ),
        _event(
            "globex_delete",
            ids,
            t(7),
            event_name="audit.payment.delete",
            audit__action="delete",
            audit__tenant__id="globex",
            audit__resource__type="payment",
            audit__resource__id="pay-2",
            enduser__id="alice",
            client__address="203.0.113.5",
        ),
    ]
    response = export(grpc_endpoint, request(acme + globex, service_name="billing"))
    assert response.partial_success.rejected_log_records == 0, response.partial_success.error_message
    return Seeded(base=base, ids=ids, acme_count=len(acme), globex_count=len(globex))
