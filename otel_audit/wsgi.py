"""``AuditMiddleware`` for WSGI apps (Flask, Django, any PEP 3333 app): the ASGI middleware's options.

It installs an ``AuditContext`` (actor and tenant from the resolvers, the client address behind
trusted proxies, user agent, method, route) while the application handles the request, so
``record()`` and ``otel_audit.sqlalchemy`` events inherit it, and records one event for requests
matching a ``SensitiveRoute`` once the application has answered (outcome from the status; an
exception → ``failure``, re-raised). Resolvers take the WSGI ``environ``. Flask's route template
and view arguments are read from the request werkzeug leaves in the environ.

>>> app.wsgi_app = AuditMiddleware(app.wsgi_app, user_resolver=header_resolver("X-User"))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from otel_audit.context import AuditContext, reset_context, set_context
from otel_audit.middleware_options import MiddlewareOptions, call_resolver, record_sensitive
from otel_audit.proxies import TrustedProxies
from otel_audit.recorder import note_error
from otel_audit.routes import SensitiveRoute

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
#: Takes the WSGI environ, returns the user/tenant/session id or ``None``.
Resolver = Callable[[Environ], "str | None"]

__all__ = ["AuditMiddleware", "SensitiveRoute", "header_resolver", "route_template"]

_WERKZEUG_PLACEHOLDER = re.compile(r"<(?:[^:<>]+:)?(\w+)>")


def header_resolver(name: str) -> Resolver:
    """A resolver reading request header ``name`` (e.g. set by an authenticating gateway)."""
    key = "HTTP_" + name.upper().replace("-", "_")

    def resolve(environ: Environ) -> str | None:
        return environ.get(key) or None

    resolve.__qualname__ = f"header_resolver({name!r})"
    return resolve


def route_template(environ: Environ) -> tuple[str | None, dict[str, Any]]:
    """The matched route's template in ``{name}`` form and its parameters, when the framework left
    them in the environ (Flask/werkzeug: ``/docs/<int:id>`` → ``/docs/{id}``), else ``(None, {})``."""
    request = environ.get("werkzeug.request")
    rule = getattr(getattr(request, "url_rule", None), "rule", None)
    if not isinstance(rule, str):
        return None, {}
    prefix = environ.get("SCRIPT_NAME", "") or ""
    return prefix + _WERKZEUG_PLACEHOLDER.sub(r"{\1}", rule), dict(getattr(request, "view_args", None) or {})


def _raw_path(environ: Environ) -> str:
    return (environ.get("SCRIPT_NAME", "") or "") + (environ.get("PATH_INFO", "") or "")


def _http_route(environ: Environ) -> str | None:
    return route_template(environ)[0] or _raw_path(environ)


class AuditMiddleware:
    """Wrap a WSGI app: ``AuditMiddleware(app, user_resolver=..., sensitive=[SensitiveRoute(...)])``.

    Options as ``otel_audit.asgi.AuditMiddleware``'s (``trusted_proxies``, ``sensitive``,
    ``actor_type``, the resolvers). The context covers the application call; a response body
    generated lazily after it returns runs outside it.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        user_resolver: Resolver | None = None,
        tenant_resolver: Resolver | None = None,
        session_resolver: Resolver | None = None,
        trusted_proxies: Iterable[str] | str | TrustedProxies = (),
        sensitive: Iterable[SensitiveRoute | str] = (),
        actor_type: str = "user",
    ) -> None:
        self.app = app
        self.options = options = MiddlewareOptions.of(
            user_resolver=user_resolver,
            tenant_resolver=tenant_resolver,
            session_resolver=session_resolver,
            trusted_proxies=trusted_proxies,
            sensitive=sensitive,
            actor_type=actor_type,
        )
        # read on every request: plain attributes, and no resolver call where there is none
        self._user = options.user_resolver
        self._tenant = options.tenant_resolver
        self._session = options.session_resolver
        self._client_ip = options.proxies.client_ip if options.proxies.networks else None
        self._actor_type = options.actor_type
        self._rules = bool(options.rules)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        context = self._request_context(environ)
        token = set_context(context)
        try:
            if not self._rules:
                return self.app(environ, start_response)
            seen = _Seen(environ, start_response)
            try:
                body = self.app(environ, seen.start_response)
            except Exception as exc:
                self._audit(environ, context, seen, exc)
                raise
            self._audit(environ, context, seen, None)
            return body
        finally:
            reset_context(token)

    def _request_context(self, environ: Environ) -> AuditContext:
        get = environ.get
        peer = get("REMOTE_ADDR") or None
        client_ip = self._client_ip
        if client_ip is not None and peer is not None:
            forwarded = get("HTTP_X_FORWARDED_FOR")
            if forwarded:
                peer = client_ip(peer, [forwarded])
        user = self._user
        tenant = self._tenant
        session = self._session
        return AuditContext(
            user_id=None if user is None else _text(call_resolver(user, environ)),
            tenant_id=None if tenant is None else _text(call_resolver(tenant, environ)),
            actor_type=self._actor_type,
            ip_address=peer,
            user_agent=get("HTTP_USER_AGENT") or None,
            session_id=None if session is None else _text(call_resolver(session, environ)),
            http_method=get("REQUEST_METHOD"),
            route_resolver=partial(_http_route, environ),
        )

    def _audit(self, environ: Environ, context: AuditContext, seen: _Seen, exc: Exception | None) -> None:
        """Record the sensitive-route event for this request, if a rule covers it. Never raises."""
        try:
            status = seen.status
            method = str(environ.get("REQUEST_METHOD", "GET"))
            raw_path = _raw_path(environ)
            template, params = seen.route if seen.route is not None else route_template(environ)
            matched = self.options.match(method, raw_path, template, params)
            if matched is None:
                return
            rule, resource_id = matched
            route = template or raw_path
            user_id = context.user_id
            if user_id is None:  # an inner authentication layer may have set what the resolver reads
                user_id = _text(call_resolver(self.options.user_resolver, environ))
            tenant_id = context.tenant_id
            if tenant_id is None:
                tenant_id = _text(call_resolver(self.options.tenant_resolver, environ))
            record_sensitive(rule, resource_id, method, route, status, exc, user_id, tenant_id, context)
        except Exception as error:  # auditing must not turn a response into an error
            note_error(error)


class _Seen:
    """The ``start_response`` wrapper of an audited request: what it told about the response."""

    __slots__ = ("environ", "route", "start", "status")

    def __init__(self, environ: Environ, start: StartResponse) -> None:
        self.environ = environ
        self.start = start
        self.status: int | None = None
        self.route: tuple[str | None, dict[str, Any]] | None = None

    def start_response(self, status_line: str, headers: Any, exc_info: Any = None) -> Any:
        if self.status is None:
            self.status = _status_code(status_line)
            # Flask drops its request from the environ when the app returns: read it now
            self.route = route_template(self.environ)
        return self.start(status_line, headers, exc_info)


def _status_code(status_line: str) -> int | None:
    try:
        return int(status_line.split(" ", 1)[0])
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
