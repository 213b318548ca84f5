"""The ``OTEL_AUDIT`` Django setting, read once.

Keys: ``user_resolver``, ``tenant_resolver``, ``session_resolver`` (callables taking the request,
or their dotted paths; the default user is ``request.user.pk`` when authenticated),
``trusted_proxies``, ``sensitive``, ``actor_type`` (as ``otel_audit.asgi.AuditMiddleware``'s);
``include``/``exclude`` (``"app_label.Model"`` or ``"app_label"``; default: every model but
Django's sessions, content types, admin log and permissions); ``include_fields``/``exclude_fields``
(``"field"`` or ``"app_label.Model.field"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from otel_audit.middleware_options import MiddlewareOptions

DEFAULT_EXCLUDE = frozenset({"sessions", "contenttypes", "admin", "auth.permission", "migrations"})


def default_user(request: Any) -> str | None:
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


def _callable(value: Any) -> Callable[[Any], Any] | None:
    return import_string(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class DjangoOptions:
    middleware: MiddlewareOptions
    include: frozenset[str] | None
    exclude: frozenset[str]
    include_fields: frozenset[str] | None
    exclude_fields: frozenset[str]

    @classmethod
    def from_settings(cls) -> DjangoOptions:
        raw: dict[str, Any] = dict(getattr(settings, "OTEL_AUDIT", {}) or {})
        include = raw.get("include")
        include_fields = raw.get("include_fields")
        return cls(
            middleware=MiddlewareOptions.of(
                user_resolver=_callable(raw.get("user_resolver")) or default_user,
                tenant_resolver=_callable(raw.get("tenant_resolver")),
                session_resolver=_callable(raw.get("session_resolver")),
                trusted_proxies=raw.get("trusted_proxies", ()),
                sensitive=raw.get("sensitive", ()),
                actor_type=raw.get("actor_type", "user"),
            ),
            include=None if include is None else frozenset(s.lower() for s in include),
            exclude=frozenset(s.lower() for s in raw.get("exclude", DEFAULT_EXCLUDE)),
            include_fields=None if include_fields is None else frozenset(include_fields),
            exclude_fields=frozenset(raw.get("exclude_fields", ())),
        )

    def wants_model(self, app_label: str, model_name: str) -> bool:
        names = {app_label.lower(), f"{app_label}.{model_name}".lower()}
        if self.include is not None and not names & self.include:
            return False
        return not names & self.exclude

    def wants_field(self, label: str, name: str) -> bool:
        if name in self.exclude_fields or f"{label}.{name}" in self.exclude_fields:
            return False
        if self.include_fields is None:
            return True
        return name in self.include_fields or f"{label}.{name}" in self.include_fields
