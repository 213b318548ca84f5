"""otel_audit: compliance-grade audit events emitted as OpenTelemetry log records.

>>> import otel_audit
>>> otel_audit.configure(endpoint="http://audit-receiver:4317", token="...", service_name="billing")
>>> otel_audit.record(action="update", resource_type="invoice", resource_id="inv-7",
...                   before={"status": "draft"}, after={"status": "sent"})

Events inherit actor, tenant, client address and trace context from the current request
(``otel_audit.asgi.AuditMiddleware`` or ``audit_context()``). See SPEC sections 1 and 2.
"""

from __future__ import annotations

from otel_audit.config import DEFAULT_REDACT, AuditSettings
from otel_audit.context import AuditContext, audit_context, current_context, set_actor
from otel_audit.diff import Redactor
from otel_audit.events import (
    created,
    deleted,
    login_failure,
    login_success,
    logout,
    permission_granted,
    permission_revoked,
    sensitive_read,
    updated,
)
from otel_audit.pipeline import AuditHandle, configure, force_flush, is_configured, shutdown
from otel_audit.recorder import EmitterStats, record, stats
from otel_audit.routes import SensitiveRoute

__all__ = [
    "DEFAULT_REDACT",
    "AuditContext",
    "AuditHandle",
    "AuditSettings",
    "EmitterStats",
    "Redactor",
    "SensitiveRoute",
    "audit_context",
    "configure",
    "created",
    "current_context",
    "deleted",
    "force_flush",
    "is_configured",
    "login_failure",
    "login_success",
    "logout",
    "permission_granted",
    "permission_revoked",
    "record",
    "sensitive_read",
    "set_actor",
    "shutdown",
    "stats",
    "updated",
]
