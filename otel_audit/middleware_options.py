"""The options every request middleware takes (ASGI, WSGI, Django), parsed once; the rule lookup
and the sensitive-route event they share.

``MiddlewareOptions.of(...)`` normalises ``trusted_proxies`` (CIDR strings or ``TrustedProxies``)
and ``sensitive`` (``SensitiveRoute`` rules or strings in the ``OTEL_AUDIT_SENSITIVE_ROUTES``
syntax). Resolvers receive the framework's request object (the ASGI scope, the WSGI environ).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from otel_audit.context import AuditContext, current_context
from otel_audit.proxies import TrustedProxies
from otel_audit.recorder import note_error, record_request
from otel_audit.routes import SensitiveRoute, outcome_for_status, parse_sensitive_routes


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


def record_sensitive(
    rule: SensitiveRoute,
    resource_id: str,
    method: str,
    route: str,
    status: int | None,
    exc: BaseException | None,
    user_id: str | None,
    tenant_id: str | None,
    context: AuditContext,
) -> None:
    """The event of a request a rule covers (every middleware records it this way): outcome from
    the status, an exception → ``failure`` (status 500 when none was sent)."""
    record_request(
        rule.action_for(method),
        rule.resource_type,
        resource_id,
        outcome_for_status(status, raised=exc is not None),
        f"unhandled {type(exc).__name__}" if exc is not None else None,
        user_id,
        tenant_id,
        route,
        status if status is not None else (500 if exc is not None else None),
        # the request's own context (not one a handler left behind): its resolver's answer
        route if current_context().route_resolver is context.route_resolver else None,
    )
