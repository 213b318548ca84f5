"""``AuditContextMiddleware``: the request's audit context for Django views, and sensitive-route events.

It sets the ``AuditContext`` (user from ``request.user`` or the configured resolver, tenant,
client address behind trusted proxies, user agent, method, the URL pattern as route) around the
view, so model changes and ``record()`` calls inherit it; requests matching a ``sensitive`` rule
are recorded once the response is ready (outcome from its status).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import fields, replace
from functools import partial
from typing import Any

from otel_audit.context import EMPTY_CONTEXT, AuditContext, current_context, reset_context, set_context
from otel_audit.django.options import DjangoOptions
from otel_audit.middleware_options import call_resolver, record_sensitive
from otel_audit.recorder import note_error

_DJANGO_PLACEHOLDER = re.compile(r"<(?:[^:<>]+:)?(\w+)>")


def route_template(request: Any) -> str | None:
    """``documents/<int:pk>`` → ``/documents/{pk}`` once URL resolution ran, else ``None``."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    if not isinstance(route, str) or not route:
        return None
    route = route.lstrip("^").rstrip("$")
    return "/" + _DJANGO_PLACEHOLDER.sub(r"{\1}", route).lstrip("/")


def _route(request: Any) -> str | None:
    return route_template(request) or request.path


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[Any], Any], options: DjangoOptions | None = None) -> None:
        self.get_response = get_response
        self.options = (options or DjangoOptions.from_settings()).middleware

    def __call__(self, request: Any) -> Any:
        options = self.options
        meta = request.META
        peer = meta.get("REMOTE_ADDR") or None
        forwarded = meta.get("HTTP_X_FORWARDED_FOR")
        context = AuditContext(
            user_id=_text(call_resolver(options.user_resolver, request)),
            tenant_id=_text(call_resolver(options.tenant_resolver, request)),
            actor_type=options.actor_type,
            ip_address=options.proxies.client_ip(peer, [forwarded]) if forwarded else peer,
            user_agent=meta.get("HTTP_USER_AGENT") or None,
            session_id=_text(call_resolver(options.session_resolver, request)),
            http_method=request.method,
            route_resolver=partial(_route, request),
        )
        # under otel_audit.wsgi.AuditMiddleware: what it knew and this request does not is kept
        outer = current_context()
        if outer is not EMPTY_CONTEXT:
            context = _layer(outer, context)
        token = set_context(context)
        try:
            response = self.get_response(request)
            if options.rules:
                self._audit(request, context, response.status_code)
            return response
        finally:
            reset_context(token)

    def _audit(self, request: Any, context: AuditContext, status: int) -> None:
        try:
            template = route_template(request)
            params = dict(getattr(getattr(request, "resolver_match", None), "kwargs", None) or {})
            matched = self.options.match(request.method, request.path, template, params)
            if matched is None:
                return
            rule, resource_id = matched
            route = template or request.path
            user_id = context.user_id
            if user_id is None:  # e.g. the view logged the user in
                user_id = _text(call_resolver(self.options.user_resolver, request))
            record_sensitive(
                rule, resource_id, request.method, route, status, None, user_id, context.tenant_id, context
            )
        except Exception as error:  # auditing must not turn a response into an error
            note_error(error)


def _layer(outer: AuditContext, inner: AuditContext) -> AuditContext:
    """``inner`` with its unknown (``None``) fields taken from ``outer``."""
    missing = {
        f.name: getattr(outer, f.name)
        for f in fields(AuditContext)
        if getattr(inner, f.name) is None and getattr(outer, f.name) is not None
    }
    return replace(inner, **missing) if missing else inner


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
