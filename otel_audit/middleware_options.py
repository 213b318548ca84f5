"""The options both request middlewares take (ASGI and WSGI), parsed once, and their rule lookup.

``MiddlewareOptions.of(...)`` normalises ``trusted_proxies`` (CIDR strings or ``TrustedProxies``)
and ``sensitive`` (``SensitiveRoute`` rules or strings in the ``OTEL_AUDIT_SENSITIVE_ROUTES``
syntax). Resolvers receive the framework's request object (the ASGI scope, the WSGI environ).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from otel_audit.proxies import TrustedProxies
from otel_audit.recorder import note_error
from otel_audit.routes import SensitiveRoute, parse_sensitive_routes


@dataclass(frozen=True)
class MiddlewareOptions:
    user_resolver: Callable[[Any], Any] | None
    tenant_resolver: Callable[[Any], Any] | None
    session_resolver: Callable[[Any], Any] | None
    proxies: TrustedProxies
    rules: tuple[SensitiveRoute, ...]
    actor_type: str

    @classmethod
    def of(
        cls,
        *,
        user_resolver: Callable[[Any], Any] | None = None,
        tenant_resolver: Callable[[Any], Any] | None = None,
        session_resolver: Callable[[Any], Any] | None = None,
        trusted_proxies: Iterable[str] | str | TrustedProxies = (),
        sensitive: Iterable[SensitiveRoute | str] = (),
        actor_type: str = "user",
    ) -> MiddlewareOptions:
        proxies = (
            trusted_proxies
            if isinstance(trusted_proxies, TrustedProxies)
            else TrustedProxies.parse(trusted_proxies)
        )
        rules: list[SensitiveRoute] = []
        for rule in sensitive:
            rules.extend(parse_sensitive_routes(rule) if isinstance(rule, str) else [rule])
        return cls(user_resolver, tenant_resolver, session_resolver, proxies, tuple(rules), actor_type)

    def match(
        self, method: str, raw_path: str, template: str | None, params: Mapping[str, object]
    ) -> tuple[SensitiveRoute, str] | None:
        """The first rule covering the request and the resource id it names, or ``None``."""
        for rule in self.rules:
            resource_id = rule.match(method, raw_path, template, params)
            if resource_id is not None:
                return rule, resource_id
        return None


def call_resolver(resolver: Callable[[Any], Any] | None, request: Any) -> Any:
    """The resolver's raw answer; ``None`` without a resolver or when it raised (counted)."""
    if resolver is None:
        return None
    try:
        return resolver(request)
    except Exception as exc:
        note_error(exc)
        return None
