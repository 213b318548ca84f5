"""Admin HTTP API (SPEC section 5): health, metrics, who-am-I, event search and detail, the
compliance summary; the exports (``exports.py``) and the UI (``ui.py``) mount beside it.

Every filter is validated into an EventFilter and bound as a query parameter by the store; the
caller's tenant scope is applied to every query, so no route, filter or cursor can reach another
tenant's rows. Every read of audit data is itself recorded (``trail.py``) before it is answered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from receiver.admin.access import Access, AdminAuthenticator
from receiver.admin.errors import log, parameter_error, reference, store_unavailable
from receiver.admin.http import Unrecorded, error, one_value, parse_buckets
from receiver.admin.metrics_access import metrics_allowed
from receiver.admin.retention_api import RetentionAPI
from receiver.admin.search_trail import SearchMemo
from receiver.admin.trail import EVENTS_RESOURCE, AccessEvent, AccessTrail, query_attributes, tenants_read
from receiver.admin.web_guard import HostPolicy, WebGuard
from receiver.config import AdminWeb, Integrity, MetricsAccess, Sources
from receiver.filters import Cursor, EventFilter, FilterError, multi_params, parse_filters, parse_limit
from receiver.retention.service import RetentionService
from receiver.store.base import AuditStore, StoreUnavailable
from receiver.telemetry import ReceiverMetrics
from receiver.transport.errors import RetryLater
from receiver.viewer.access import force_actor, hide_from_search, shown, shown_stats

if TYPE_CHECKING:
    from receiver.alerts.evaluator import Evaluator
    from receiver.streams.service import Streams
    from receiver.viewer.config import Viewer

UTC = dt.timezone.utc
#: the resource id of a search or export in its audit event (a detail view names the event)
Handler = Callable[[Request, Access], Awaitable[Response]]


class AdminAPI:
    #: source-side gap detection settings (set by build_admin_app)
    sources: Sources = Sources()

    def findings(self, tenants: tuple[str, ...] | None) -> list[dict[str, Any]]:
        """Journal tampering and source gaps (``receiver.integrity.findings``) as JSON."""
        from receiver.integrity.findings import collect

        grace = dt.timedelta(seconds=self.sources.gap_grace_seconds)
        return [f.to_json() for f in collect(self.store, tenants, dt.datetime.now(UTC), grace)]

    def __init__(
        self,
        store: AuditStore,
        auth: AdminAuthenticator,
        metrics: ReceiverMetrics,
        trail: AccessTrail | None = None,
        integrity: Integrity | None = None,
    ) -> None:
        self.store = store
        self.auth = auth
        self.metrics = metrics
        self.trail = trail or AccessTrail(None)
        self.integrity = integrity or Integrity()
        self.metrics_access = MetricsAccess()
        self.searches = SearchMemo()

    # -- plumbing ---------------------------------------------------------------------
    def access(self, request: Request) -> Access | None:
        return self.auth.authenticate(request.headers.get("authorization"))

    def authenticated(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """401 without a known token; store failures and unrecordable accesses as 503."""

        async def endpoint(request: Request) -> Response:
            access = self.access(request)
            if access is None:
                return error(401, "missing or unknown admin token: send 'Authorization: Bearer <token>'")
            return await self.guarded(handler, request, access)

        return endpoint

    def admin_only(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Like :meth:`authenticated`, and 403 for a token whose role is not ``admin``
        (retention and verification routes, SPEC section 4)."""

        async def only_admins(request: Request, access: Access) -> Response:
            if not access.is_admin:
                return error(403, "this route needs an admin token")
            return await handler(request, access)

        return self.authenticated(only_admins)

    @staticmethod
    async def guarded(handler: Handler, request: Request, access: Access) -> Response:
        try:
            return await handler(request, access)
        except FilterError as exc:
            return error(400, str(exc))
        except StoreUnavailable as exc:
            return store_unavailable(exc)
        except Unrecorded as exc:
            return store_unavailable(exc.__cause__ or exc, str(exc))
        except Exception as exc:
            answer = parameter_error(exc)
            if answer is None:
                raise
            return answer

    async def record(
        self,
        request: Request,
        access: Access,
        action: str,
        tenants: tuple[str, ...],
        *,
        status: int = 200,
        outcome: str = "success",
        resource_id: str = "",
        reason: str = "",
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        """Write the access to the audit trail and wait until it is durable (fail closed)."""
        if not self.trail.enabled:
            return
        route = request.scope.get("route")
        event = AccessEvent(
            access=access,
            action=action,
            tenants=tenants,
            outcome=outcome,
            resource_id=resource_id,
            reason=reason,
            client_address=request.client.host if request.client else "",
            user_agent=request.headers.get("user-agent", "")[:512],
            http_method=request.method,
            http_route=getattr(route, "path", request.url.path),
            http_status=status,
            attributes=dict(attributes or {}),
        )
        try:
            await asyncio.to_thread(self.trail.record, event)
        except (RetryLater, StoreUnavailable) as exc:
            raise Unrecorded("this access cannot be recorded in the audit log right now") from exc

    async def record_search(
        self,
        request: Request,
        access: Access,
        params: Mapping[str, str | list[str]],
        tenants: tuple[str, ...],
        *,
        reason: str,
        attributes: Mapping[str, str],
    ) -> None:
        """Record a search once per search, not per page or refresh (``search_trail.py``)."""
        key = self.searches.key(access, params)
        missing = self.searches.claim(key, tenants)
        if not missing:
            return
        try:
            await self.record(
                request,
                access,
                "read",
                missing,
                resource_id=EVENTS_RESOURCE,
                reason=reason,
                attributes=attributes,
            )
        except BaseException:
            self.searches.release(key, missing)
            raise

    @staticmethod
    def parse_scoped(
        params: Mapping[str, str | list[str]], access: Access, *, extra: tuple[str, ...] = ()
    ) -> EventFilter:
        values = {k: v for k, v in params.items() if k not in extra}
        # a viewer token bound to one user gets that user forced (receiver/viewer/)
        return force_actor(hide_from_search(parse_filters(values).scoped(access.tenants), access), access)

    async def refuse_other_tenant(
        self, request: Request, access: Access, flt: EventFilter, action: str
    ) -> Response:
        """A filter for a tenant outside the token's scope: 403 and a denied access event."""
        asked = ",".join(flt.outside_scope())
        await self.record(
            request,
            access,
            action,
            tenants_read(access, None),
            status=403,
            outcome="denied",
            resource_id=EVENTS_RESOURCE,
            reason=f"asked for tenant {asked!r}, outside this token's tenants",
            attributes={"audit.query.tenant": flt.tenant.text() if flt.tenant else ""},
        )
        return error(403, f"tenant {asked!r} is not visible to this token")

    # -- routes -----------------------------------------------------------------------
    async def healthz(self, request: Request) -> Response:
        try:
            await asyncio.to_thread(self.store.ping)
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            ref = reference()
            log.error("health: store unavailable (reference %s): %s", ref, exc)
            return JSONResponse(
                {"status": "unavailable", "error": f"store unavailable (reference {ref})", "reference": ref},
                status_code=503,
            )
        return JSONResponse({"status": "ok"})

    async def metrics_text(self, request: Request) -> Response:
        if not metrics_allowed(request, self.metrics_access, self.auth):
            return error(401, "/metrics needs a same-host peer or a token (config metrics.auth)")
        body, content_type = self.metrics.render()
        return Response(body, media_type=content_type)

    async def me(self, request: Request, access: Access) -> Response:
        return JSONResponse(
            {
                "name": access.name,
                "role": access.role,
                "tenants": list(access.tenants) if access.tenants is not None else ["*"],
                "open": not self.auth.required,
            }
        )

    async def tenants(self, request: Request, access: Access) -> Response:
        if access.tenants is not None:
            return JSONResponse({"tenants": list(access.tenants)})
        found = await asyncio.to_thread(self.store.tenants, EventFilter())
        return JSONResponse({"tenants": found})

    async def events(self, request: Request, access: Access) -> Response:
        params = multi_params(request.query_params.multi_items())
        limit = parse_limit(one_value(params.pop("limit", None)))
        cursor_text = one_value(params.pop("cursor", None))
        cursor = Cursor.decode(cursor_text) if cursor_text else None
        flt = self.parse_scoped(params, access)
        if flt.visible_nothing():
            return await self.refuse_other_tenant(request, access, flt, "read")
        rows = await asyncio.to_thread(self.store.search, flt, limit, cursor)
        # the total of the whole search (not of this page): the first page's answer, or a page short
        # of the limit, says it without a second query
        if cursor is None and len(rows) < limit:
            total = len(rows)
        else:
            total = await asyncio.to_thread(self.store.count, flt)
        next_cursor = None
        if len(rows) == limit:
            last = rows[-1]
            created = dt.datetime.fromisoformat(last["created_at"].replace("Z", "+00:00"))
            next_cursor = Cursor(created, last["id"]).encode()
        await self.record_search(
            request,
            access,
            params,
            tenants_read(access, flt.single_tenant, (r["tenant_id"] for r in rows)),
            reason=f"searched audit events: {len(rows)} returned",
            attributes=query_attributes(params, {"audit.result.count": str(len(rows))}),
        )
        rows = [shown(r, access) for r in rows]  # a viewer token's hidden fields left out
        return JSONResponse({"events": rows, "next_cursor": next_cursor, "total": total})

    async def stats(self, request: Request, access: Access) -> Response:
        params = multi_params(request.query_params.multi_items())
        buckets = parse_buckets(one_value(params.pop("buckets", None)))
        flt = self.parse_scoped(params, access)
        if flt.visible_nothing():
            return await self.refuse_other_tenant(request, access, flt, "read")
        report = await asyncio.to_thread(self.store.stats, flt, buckets)
        tenants = await asyncio.to_thread(self.store.tenants, flt) if flt.single_tenant is None else []
        await self.record_search(
            request,
            access,
            params,
            tenants_read(access, flt.single_tenant, tenants),
            reason=f"viewed audit event statistics: {report['total']} matching",
            attributes=query_attributes(params, {"audit.result.count": str(report["total"])}),
        )
        return JSONResponse(shown_stats(report, access))

    async def event(self, request: Request, access: Access) -> Response:
        try:
            event_id = str(uuid.UUID(request.path_params["event_id"]))
        except ValueError:
            return error(400, "event id is not a UUID")
        row: dict[str, Any] | None = await asyncio.to_thread(self.store.get_event, event_id, access.tenants)
        if row is not None and access.actor is not None and row.get("user_id") != access.actor:
            row = None  # a viewer token bound to one user sees only that user's events
        if row is None:
            await self.record(
                request,
                access,
                "read",
                tenants_read(access, None),
                status=404,
                outcome="failure",
                resource_id=event_id,
                reason="viewed an audit event: not found or not visible",
            )
            return error(404, "no such event")
        await self.record(
            request,
            access,
            "read",
            (row["tenant_id"],),
            resource_id=event_id,
            reason="viewed an audit event",
        )
        return JSONResponse(shown(row, access))

    async def compliance(self, request: Request, access: Access) -> Response:
        params = dict(request.query_params)
        unknown = sorted(set(params) - {"tenant"})
        if unknown:
            raise FilterError(f"unknown parameter(s): {', '.join(unknown)}")
        tenant = params.get("tenant") or (
            access.tenants[0] if access.tenants and len(access.tenants) == 1 else ""
        )
        if not tenant:
            raise FilterError("tenant: required (which tenant's compliance summary)")
        flt = EventFilter(tenant=tenant, tenants=access.tenants)
        if flt.visible_nothing():
            return await self.refuse_other_tenant(request, access, flt, "read")
        report = await asyncio.to_thread(self.store.compliance, tenant, dt.datetime.now(UTC))
        report["schemas"] = self.metrics.schema_counts()  # event schemas, all tenants, since start
        report["findings"] = await asyncio.to_thread(self.findings, (tenant,))
        # events in no tamper-evidence log: damage, shown beside the verify status (issue 15 item 6)
        summaries = await asyncio.to_thread(self.store.log_summaries, (tenant,))
        report["unchained_events"] = sum(s.rows for s in summaries if s.origin == "")
        await self.record(
            request,
            access,
            "read",
            (tenant,),
            resource_id="compliance",
            reason="viewed the compliance summary",
        )
        return JSONResponse(report)

    def routes(self) -> list[BaseRoute]:
        auth = self.authenticated
        return [
            Route("/healthz", self.healthz),
            Route("/metrics", self.metrics_text),
            Route("/api/me", auth(self.me)),
            Route("/api/tenants", auth(self.tenants)),
            Route("/api/events", auth(self.events)),
            Route("/api/events/{event_id}", auth(self.event)),
            Route("/api/stats", auth(self.stats)),
            Route("/api/compliance", auth(self.compliance)),
        ]


def build_admin_app(
    store: AuditStore,
    auth: AdminAuthenticator,
    metrics: ReceiverMetrics,
    trail: AccessTrail | None = None,
    integrity: Integrity | None = None,
    retention: RetentionService | None = None,
    alerts: Evaluator | None = None,
    hosts: HostPolicy | None = None,
    metrics_access: MetricsAccess | None = None,
    sources: Sources | None = None,
    streams: Streams | None = None,
    viewer: Viewer | None = None,
    web: AdminWeb | None = None,
) -> Starlette:
    """``hosts``: the Host names served (default: loopback only; see ``web_guard.py``)."""
    from receiver.admin.exports import ExportRoutes
    from receiver.admin.integrity_api import IntegrityRoutes
    from receiver.admin.ui import SecurityHeaders, ui_routes
    from receiver.alerts.api import AlertRoutes

    api = AdminAPI(store, auth, metrics, trail, integrity)
    if metrics_access is not None:
        api.metrics_access = metrics_access
    api.sources = sources or Sources()
    routes = (
        api.routes()
        + IntegrityRoutes(api).routes()
        + ExportRoutes(api).routes()
        + AlertRoutes(api, alerts).routes()
        + ui_routes()
    )
    from receiver.streams.api import StreamRoutes

    routes += StreamRoutes(api, streams).routes()
    from receiver.viewer.api import ViewerRoutes

    routes += ViewerRoutes(api, viewer or auth.viewer).routes()
    if retention is not None:
        routes += RetentionAPI(retention, api.access).routes()
    from receiver.admin.session import SessionCookies, SessionKeys, SessionRoutes

    web = web or AdminWeb()
    sessions = SessionKeys(auth.secrets, web.session_ttl_seconds)
    routes += SessionRoutes(auth, sessions, web.secure_cookies).routes()
    app = Starlette(routes=routes)
    from receiver.viewer.gate import ViewerGate

    app.add_middleware(ViewerGate, config=viewer or auth.viewer)  # inside: sees a session's header too
    app.add_middleware(SessionCookies, auth=auth, keys=sessions, secure=web.secure_cookies)
    app.add_middleware(WebGuard, hosts=hosts or HostPolicy.for_listen("127.0.0.1:0"))
    app.add_middleware(SecurityHeaders)  # added last: outermost, so the guard's refusals carry it too
    return app
