"""Admin HTTP API (SPEC section 5): health, metrics, event search and detail.

Every filter is validated into an EventFilter and bound as a query parameter by the store;
the caller's tenant scope is applied to every query, so no route, filter or cursor can reach
another tenant's rows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from receiver.admin.access import Access, AdminAuthenticator
from receiver.config import Integrity
from receiver.filters import Cursor, FilterError, parse_filters, parse_limit
from receiver.store.base import AuditStore, StoreUnavailable
from receiver.telemetry import ReceiverMetrics


def error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


class AdminAPI:
    def __init__(
        self,
        store: AuditStore,
        auth: AdminAuthenticator,
        metrics: ReceiverMetrics,
        integrity: Integrity | None = None,
    ) -> None:
        self.store = store
        self.auth = auth
        self.metrics = metrics
        self.integrity = integrity or Integrity()

    def access(self, request: Request) -> Access | None:
        return self.auth.authenticate(request.headers.get("authorization"))

    async def healthz(self, request: Request) -> Response:
        try:
            await asyncio.to_thread(self.store.ping)
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            return JSONResponse({"status": "unavailable", "error": str(exc)[:200]}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics_text(self, request: Request) -> Response:
        body, content_type = self.metrics.render()
        return Response(body, media_type=content_type)

    async def events(self, request: Request) -> Response:
        access = self.access(request)
        if access is None:
            return error(401, "missing or unknown admin token")
        params = dict(request.query_params)
        try:
            limit = parse_limit(params.pop("limit", None))
            cursor_text = params.pop("cursor", None)
            cursor = Cursor.decode(cursor_text) if cursor_text else None
            flt = parse_filters(params).scoped(access.tenants)
        except FilterError as exc:
            return error(400, str(exc))
        try:
            rows = await asyncio.to_thread(self.store.search, flt, limit, cursor)
        except StoreUnavailable as exc:
            return error(503, f"store unavailable: {str(exc)[:200]}")
        next_cursor = None
        if len(rows) == limit:
            last = rows[-1]
            created = dt.datetime.fromisoformat(last["created_at"].replace("Z", "+00:00"))
            next_cursor = Cursor(created, last["id"]).encode()
        return JSONResponse({"events": rows, "next_cursor": next_cursor})

    async def event(self, request: Request) -> Response:
        access = self.access(request)
        if access is None:
            return error(401, "missing or unknown admin token")
        event_id = request.path_params["event_id"]
        try:
            event_id = str(uuid.UUID(event_id))
        except ValueError:
            return error(400, "event id is not a UUID")
        row: dict[str, Any] | None = await asyncio.to_thread(self.store.get_event, event_id, access.tenants)
        if row is None:
            return error(404, "no such event")
        return JSONResponse(row)

    async def verify(self, request: Request) -> Response:
        """Chain verification per tenant (admin tokens; only the token's own tenants)."""
        from receiver.integrity.setup import default_checkpoint_dir, default_public_key
        from receiver.integrity.verify import TenantReport, verify_store

        access = self.access(request)
        if access is None:
            return error(401, "missing or unknown admin token")
        if not access.is_admin:
            return error(403, "verify needs an admin token")
        params = dict(request.query_params)
        tenant = params.pop("tenant", None)
        try:
            when = parse_filters({k: v for k, v in params.items() if k in ("since", "until")})
        except FilterError as exc:
            return error(400, str(exc))
        if tenant is not None and access.tenants is not None and tenant not in access.tenants:
            return error(403, "this token may not verify that tenant")
        tenants = (tenant,) if tenant is not None else access.tenants

        def run() -> list[dict[str, Any]]:
            public_key = default_public_key(self.integrity, self.store)
            reports = verify_store(
                self.store,
                tenants=tenants,
                since=when.since,
                until=when.until,
                checkpoint_dir=default_checkpoint_dir(self.integrity, self.store),
                public_key=public_key,
            )
            if tenant is not None and not reports:
                reports = [TenantReport(tenant, signatures_checked=public_key is not None)]
            return [r.to_json() for r in reports]

        try:
            results = await asyncio.to_thread(run)
        except StoreUnavailable as exc:
            return error(503, f"store unavailable: {str(exc)[:200]}")
        return JSONResponse({"tenants": results})

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz),
            Route("/metrics", self.metrics_text),
            Route("/api/events", self.events),
            Route("/api/events/{event_id}", self.event),
            Route("/api/verify", self.verify),
        ]


def build_admin_app(
    store: AuditStore, auth: AdminAuthenticator, metrics: ReceiverMetrics, integrity: Integrity | None = None
) -> Starlette:
    return Starlette(routes=AdminAPI(store, auth, metrics, integrity).routes())
