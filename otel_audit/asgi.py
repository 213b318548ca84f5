"""``AuditMiddleware``: pure ASGI middleware that sets the audit context and audits sensitive routes.

For every HTTP request it installs an ``AuditContext`` (actor and tenant from the resolvers, client
address, user agent, method, route template) for the whole request, so handler code calling
``record()`` inherits it. For requests matching a ``SensitiveRoute`` it records one event after the
response, with the outcome taken from the status code (an exception → ``failure``, re-raised).
Inside ``opentelemetry.instrumentation.asgi.OpenTelemetryMiddleware`` events carry the request's
trace and span ids. Non-HTTP scopes (lifespan, websocket) pass straight through.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from functools import partial
from typing import Any

from otel_audit.context import (
    AuditContext,
    actor_cell,
    new_actor_cell,
    reset_actor_cell,
    reset_context,
    set_context,
)
from otel_audit.middleware_options import MiddlewareOptions, call_resolver, record_sensitive
from otel_audit.proxies import TrustedProxies, strip_port
from otel_audit.recorder import note_error
from otel_audit.routes import SensitiveRoute

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: Takes the ASGI scope, returns the user/tenant/session id or ``None``; may be sync or async.
Resolver = Callable[[Scope], "str | None | Awaitable[str | None]"]

log = logging.getLogger("otel_audit")

__all__ = ["AuditMiddleware", "Resolver", "SensitiveRoute", "header_resolver", "route_template"]


def get_header(scope: Scope, name: str) -> str | None:
    """The first value of request header ``name`` (case-insensitive)."""
    key = name.lower().encode("latin-1")
    for header, value in scope.get("headers") or ():
        if header.lower() == key:
            return bytes(value).decode("latin-1")
    return None


def header_resolver(name: str) -> Resolver:
    """A resolver reading request header ``name`` (e.g. set by an authenticating gateway)."""

    key = name.lower().encode("latin-1")  # once, not per request

    def resolve(scope: Scope) -> str | None:
        for header, value in scope.get("headers") or ():
            if header.lower() == key:
                return bytes(value).decode("latin-1") or None
        return None

    resolve.__qualname__ = f"header_resolver({name!r})"
    return resolve


def route_template(scope: Scope, root_path: str = "") -> str | None:
    """The matched route's template (Starlette sets ``scope["route"]`` while routing), with the
    prefix of any mount it sits under; ``None`` before routing or for a framework without it."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return None
    current_root = scope.get("root_path", "") or ""
    prefix = current_root[len(root_path) :] if current_root.startswith(root_path) else ""
    return prefix + template


def _http_route(scope: Scope, root_path: str, raw_path: str) -> str:
    return route_template(scope, root_path) or raw_path


class AuditMiddleware:
    """Wrap an ASGI app: ``AuditMiddleware(app, user_resolver=..., sensitive=[SensitiveRoute(...)])``.

    ``trusted_proxies``: CIDRs whose ``X-Forwarded-For`` is believed. ``sensitive``: rules, or
    strings in the ``OTEL_AUDIT_SENSITIVE_ROUTES`` syntax. ``actor_type``: the actor type of the
    requests' users. A resolver that returns ``None`` before the request (e.g. it reads what an inner
    authentication middleware puts in the scope) is asked again for the sensitive-route event.
    """

    def __init__(
        self,
        app: ASGIApp,
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
        self.user_resolver = user_resolver
        self.tenant_resolver = tenant_resolver
        self.session_resolver = session_resolver
        self.proxies = options.proxies
        self.rules: tuple[SensitiveRoute, ...] = options.rules
        self.actor_type = actor_type
        self._rewrite_warned = False

    def _check_rewritten_peer(self, peer: str, forwarded: list[str]) -> None:
        """The server replaced the peer with an X-Forwarded-For entry before we ran (uvicorn's
        proxy headers are on by default and believe 127.0.0.1, or whatever
        --forwarded-allow-ips says): ``trusted_proxies`` is then never consulted. Warn once."""
        hops = {strip_port(hop) for header in forwarded for hop in header.split(",") if hop.strip()}
        if strip_port(peer) not in hops:
            return
        self._rewrite_warned = True
        log.warning(
            "otel_audit: the client address %s came from X-Forwarded-For before AuditMiddleware ran: "
            "the server rewrote it (uvicorn does so by default for peers in --forwarded-allow-ips, "
            "127.0.0.1 unless set), so trusted_proxies is not applied. Run uvicorn with "
            "--no-proxy-headers and let trusted_proxies decide, or set --forwarded-allow-ips to "
            "exactly your proxies (logged once)",
            peer,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root_path: str = scope.get("root_path", "") or ""
        raw_path: str = scope.get("path", "") or ""
        context = await self._request_context(scope, root_path, raw_path)
        token = set_context(context)
        try:
            if not self.rules:
                await self.app(scope, receive, send)
                return
            capture = _StatusCapture(send)
            cell = new_actor_cell()  # set_actor() in the handler reaches our event through it
            try:
                try:
                    await self.app(scope, receive, capture)
                except Exception as exc:
                    await self._audit(scope, context, root_path, raw_path, capture.status, exc)
                    raise
                await self._audit(scope, context, root_path, raw_path, capture.status, None)
            finally:
                reset_actor_cell(cell)
        finally:
            reset_context(token)

    async def _request_context(self, scope: Scope, root_path: str, raw_path: str) -> AuditContext:
        user_agent = None
        forwarded: list[str] = []
        for name, value in scope.get("headers") or ():
            lowered = name.lower()
            if lowered == b"user-agent":
                user_agent = bytes(value).decode("latin-1")
            elif lowered == b"x-forwarded-for":
                forwarded.append(bytes(value).decode("latin-1"))
        client = scope.get("client")
        peer = str(client[0]) if client else None
        # this runs on every request: a missing or synchronous resolver costs no coroutine
        user_id = _call(self.user_resolver, scope)
        if user_id is not None and type(user_id) is not str:
            user_id = await _settle(user_id)
        tenant_id = _call(self.tenant_resolver, scope)
        if tenant_id is not None and type(tenant_id) is not str:
            tenant_id = await _settle(tenant_id)
        if forwarded and peer is not None and not self._rewrite_warned:
            self._check_rewritten_peer(peer, forwarded)
        ip_address = self.proxies.client_ip(peer, forwarded) if forwarded else peer
        session_id = _call(self.session_resolver, scope)
        if session_id is not None and type(session_id) is not str:
            session_id = await _settle(session_id)
        return AuditContext(
            user_id=user_id,
            tenant_id=tenant_id,
            actor_type=self.actor_type,
            ip_address=ip_address,
            user_agent=user_agent,
            session_id=session_id,
            http_method=scope.get("method"),
            route_resolver=partial(_http_route, scope, root_path, raw_path),
        )

    async def _audit(
        self,
        scope: Scope,
        context: AuditContext,
        root_path: str,
        raw_path: str,
        status: int | None,
        exc: Exception | None,
    ) -> None:
        """Record the sensitive-route event for this request, if a rule covers it. Never raises."""
        try:
            method = str(scope.get("method", "GET"))
            template = route_template(scope, root_path)
            params = scope.get("path_params") or {}
            matched = self.options.match(method, raw_path, template, params)
            if matched is None:
                return
            rule, resource_id = matched
            route = template or raw_path
            named = actor_cell()
            user_id = named.user_id if named is not None and named.user_id is not None else context.user_id
            if user_id is None:
                user_id = await _resolve(self.user_resolver, scope)
            tenant_id = (
                named.tenant_id if named is not None and named.tenant_id is not None else context.tenant_id
            )
            if tenant_id is None:
                tenant_id = await _resolve(self.tenant_resolver, scope)
            record_sensitive(rule, resource_id, method, route, status, exc, user_id, tenant_id, context)
        except Exception as error:  # auditing must not turn a response into an error
            note_error(error)


class _StatusCapture:
    """The send wrapper of an audited request: keeps the first response status."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status: int | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and self.status is None:
            self.status = int(message["status"])
        await self.send(message)


async def _resolve(resolver: Resolver | None, scope: Scope) -> str | None:
    value = _call(resolver, scope)
    if value is None or type(value) is str:
        return value
    return await _settle(value)


_call = call_resolver


async def _settle(value: Any) -> str | None:
    """A resolver's answer that is not a ``str``: awaited if awaitable, then as text."""
    try:
        if inspect.isawaitable(value):
            value = await value
    except Exception as exc:
        note_error(exc)
        return None
    return None if value is None else str(value)
