"""The request context an audit event inherits: who, from where, on which request.

It lives in a ``contextvars.ContextVar`` so it follows the request through ``await`` and threads
started with ``contextvars.copy_context``. The ASGI middleware sets it for a whole request;
``audit_context(**fields)`` layers more fields over the current one for a block of code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field, fields, replace
from typing import Any

from otel_audit import attributes as attr


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Request-scoped facts copied onto every event recorded under it. ``None`` means unknown."""

    user_id: str | None = None
    tenant_id: str | None = None
    actor_type: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    session_id: str | None = None
    http_method: str | None = None
    http_route: str | None = None
    http_status: int | None = None
    #: Called when ``http_route`` is ``None``: frameworks learn the route template only after
    #: routing, i.e. after the middleware has set this context (see ``otel_audit.asgi``).
    route_resolver: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)

    def route(self) -> str | None:
        if self.http_route is not None or self.route_resolver is None:
            return self.http_route
        return self.route_resolver()

    def write_attributes(self, out: dict[str, Any], route: str | None = None) -> None:
        """Copy the known fields into ``out`` under their attribute names (SPEC section 1).

        ``route``: the caller already knows the route, so the resolver is not asked; it is written
        where the resolver's answer would go (the attribute order stays the same)."""
        # unrolled (not a loop over FIELD_ATTRIBUTES): this runs on every audited request
        if (value := self.user_id) is not None:
            out[attr.USER_ID] = value
        if (value := self.tenant_id) is not None:
            out[attr.TENANT_ID] = value
        if (value := self.actor_type) is not None:
            out[attr.ACTOR_TYPE] = value
        if (value := self.ip_address) is not None:
            out[attr.CLIENT_ADDRESS] = value
        if (value := self.user_agent) is not None:
            out[attr.USER_AGENT] = value
        if (value := self.session_id) is not None:
            out[attr.SESSION_ID] = value
        if (value := self.http_method) is not None:
            out[attr.HTTP_METHOD] = value
        if (value := self.http_route) is not None:
            out[attr.HTTP_ROUTE] = value
        if (status := self.http_status) is not None:
            out[attr.HTTP_STATUS] = status
        if self.http_route is None and self.route_resolver is not None:
            if route is None:
                route = self.route_resolver()
            if route is not None:
                out[attr.HTTP_ROUTE] = route


#: Context field → event attribute name.
FIELD_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("user_id", attr.USER_ID),
    ("tenant_id", attr.TENANT_ID),
    ("actor_type", attr.ACTOR_TYPE),
    ("ip_address", attr.CLIENT_ADDRESS),
    ("user_agent", attr.USER_AGENT),
    ("session_id", attr.SESSION_ID),
    ("http_method", attr.HTTP_METHOD),
    ("http_route", attr.HTTP_ROUTE),
    ("http_status", attr.HTTP_STATUS),
)
FIELD_TO_ATTRIBUTE: dict[str, str] = dict(FIELD_ATTRIBUTES)
CONTEXT_FIELDS: frozenset[str] = frozenset(f.name for f in fields(AuditContext))

EMPTY_CONTEXT = AuditContext()
_current: ContextVar[AuditContext] = ContextVar("otel_audit_context", default=EMPTY_CONTEXT)


def current_context() -> AuditContext:
    """The context in effect here (``EMPTY_CONTEXT`` outside any request)."""
    return _current.get()


def set_context(context: AuditContext) -> Token[AuditContext]:
    """Install ``context``; pass the token to ``reset_context`` when the scope ends."""
    return _current.set(context)


def reset_context(token: Token[AuditContext]) -> None:
    _current.reset(token)


@dataclass(slots=True)
class ActorCell:
    """The actor a handler named with ``set_actor()`` during a request. Mutable and shared by
    every copy of the request's context (a sync handler's thread, a task), so the middleware's
    own event after the response sees it."""

    user_id: str | None = None
    tenant_id: str | None = None


_actor_cell: ContextVar[ActorCell | None] = ContextVar("otel_audit_actor_cell", default=None)


def new_actor_cell() -> Token[ActorCell | None]:
    """For the middleware: a fresh cell for this request; pass the token to ``reset_actor_cell``."""
    return _actor_cell.set(ActorCell())


def actor_cell() -> ActorCell | None:
    return _actor_cell.get()


def reset_actor_cell(token: Token[ActorCell | None]) -> None:
    _actor_cell.reset(token)


def set_actor(
    *,
    user_id: str | None = None,
    tenant_id: str | None = None,
    session_id: str | None = None,
    actor_type: str | None = None,
) -> None:
    """Name the actor once the application knows it (after authentication, in the handler or a
    dependency): later ``record()`` calls here carry it, and so does the ASGI middleware's
    sensitive-route event for this request (user and tenant). ``None`` values are ignored.

    A ``user_resolver`` runs before the handler, so it cannot see what authentication sets later
    (``scope["state"]`` is empty then); this can.
    """
    given = {
        k: str(v)
        for k, v in (
            ("user_id", user_id),
            ("tenant_id", tenant_id),
            ("session_id", session_id),
            ("actor_type", actor_type),
        )
        if v is not None
    }
    if not given:
        return
    cell = _actor_cell.get()
    if cell is not None:
        cell.user_id = given.get("user_id", cell.user_id)
        cell.tenant_id = given.get("tenant_id", cell.tenant_id)
    _current.set(replace(_current.get(), **given))


@contextmanager
def audit_context(**fields: Any) -> Iterator[AuditContext]:
    """Layer ``fields`` (AuditContext field names; ``None`` values ignored) over the current context.

    >>> with audit_context(user_id="alice", tenant_id="acme"):
    ...     record(action="export", resource_type="report", resource_id="q3")
    """
    given = {k: v for k, v in fields.items() if v is not None}
    context = replace(_current.get(), **given) if given else _current.get()
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
