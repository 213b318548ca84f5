"""Admin API routes of the verifiable log (SPEC section 7): verify, an event's inclusion proof,
signed checkpoints and consistency proofs, each within the token's tenants."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from receiver.admin.access import Access
from receiver.admin.errors import store_unavailable
from receiver.admin.http import error
from receiver.filters import FilterError, parse_filters
from receiver.store.base import StoreUnavailable

if TYPE_CHECKING:
    from receiver.admin.api import AdminAPI


class IntegrityRoutes:
    def __init__(self, api: AdminAPI) -> None:
        self.api = api

    def _reports(
        self, tenants: tuple[str, ...] | None, since: Any = None, until: Any = None, tenant: str | None = None
    ) -> list[Any]:
        from receiver.integrity.setup import default_published_dirs, default_verifiers
        from receiver.integrity.verify import TenantReport, verify_store

        verifiers = default_verifiers(self.api.integrity, self.api.store)
        reports = verify_store(
            self.api.store,
            tenants=tenants,
            since=since,
            until=until,
            checkpoint_dirs=default_published_dirs(self.api.integrity, self.api.store),
            verifiers=verifiers,
        )
        if tenant is not None and not reports:
            reports = [TenantReport(tenant, signatures_checked=bool(verifiers))]
        return reports

    async def verify(self, request: Request, access: Access) -> Response:
        """Chain verification per tenant (admin tokens; only the token's own tenants)."""
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
            return [r.to_json() for r in self._reports(tenants, when.since, when.until, tenant)]

        try:
            results = await asyncio.to_thread(run)
            findings = await asyncio.to_thread(self.api.findings, tenants)
        except StoreUnavailable as exc:
            return store_unavailable(exc)
        return JSONResponse({"tenants": results, "findings": findings})

    async def status(self, request: Request, access: Access) -> Response:
        """One tenant's tamper-evidence status for any role within its tenants (auditors too:
        ``/api/verify`` stays admin-only, SPEC section 4). Events in no log and findings
        (source gaps, journal damage) make it ``damaged``: never green with rows outside the log."""
        params = dict(request.query_params)
        unknown = sorted(set(params) - {"tenant"})
        if unknown:
            return error(400, f"unknown parameter(s): {', '.join(unknown)}")
        tenant = params.get("tenant") or (
            access.tenants[0] if access.tenants and len(access.tenants) == 1 else ""
        )
        if not tenant:
            return error(400, "tenant: required (which tenant's tamper-evidence status)")
        if access.tenants is not None and tenant not in access.tenants:
            return error(403, "this token may not read that tenant")
        try:
            (report,) = await asyncio.to_thread(self._reports, (tenant,), None, None, tenant)
            findings = await asyncio.to_thread(self.api.findings, (tenant,))
        except StoreUnavailable as exc:
            return store_unavailable(exc)
        unchained = sum(
            s.rows for s in await asyncio.to_thread(self.api.store.log_summaries, (tenant,)) if s.origin == ""
        )
        damaged = bool(report.damages or findings)
        return JSONResponse(
            {
                "tenant": tenant,
                "status": "damaged" if damaged else "intact",
                "events": report.events,
                "checkpoints": report.checkpoints,
                "unchained": unchained,
                "damages": [{"kind": d.kind, "detail": d.detail} for d in report.damages],
                "findings": findings,
                "signatures_checked": report.signatures_checked,
                "external_copy": report.external_copy,
                "summary": report.summary(),
            }
        )

    async def proof(self, request: Request, access: Access) -> Response:
        """Inclusion proof of one event (SPEC 7), within the token's tenants."""
        from receiver.integrity.proofs import ProofError, event_proof

        try:
            event_id = str(uuid.UUID(request.path_params["event_id"]))
        except ValueError:
            return error(400, "event id is not a UUID")
        if access.actor is not None:  # a viewer token bound to one user: only that user's events
            row = await asyncio.to_thread(self.api.store.get_event, event_id, access.tenants)
            if row is None or row.get("user_id") != access.actor:
                return error(404, "no such event")
        try:
            doc = await asyncio.to_thread(event_proof, self.api.store, event_id, access.tenants)
        except ProofError as exc:
            return error(exc.status, str(exc))
        from receiver.integrity.verify import tenant_of

        # the proof carries the event's content (its canonical bytes): a read like /api/events/{id}
        await self.api.record(
            request,
            access,
            "read",
            (tenant_of(doc["origin"]) or "",),
            resource_id=event_id,
            reason="fetched an audit event's inclusion proof",
        )
        return JSONResponse(doc)

    async def checkpoints(self, request: Request, access: Access) -> Response:
        tenant = request.query_params.get("tenant")
        if not tenant:
            return error(400, "tenant is required")
        if access.tenants is not None and tenant not in access.tenants:
            return error(403, "this token may not read that tenant")
        rows = await asyncio.to_thread(self.api.store.checkpoint_rows, (tenant,))
        return JSONResponse({"checkpoints": [r["note"] for r in rows]})

    async def consistency(self, request: Request, access: Access) -> Response:
        from receiver.integrity.proofs import ProofError, consistency
        from receiver.integrity.verify import tenant_of

        params = request.query_params
        origin = params.get("origin", "")
        tenant = tenant_of(origin)
        if tenant is None:
            return error(400, "origin must be otel-audit/<tenant>/<instance>")
        if access.tenants is not None and tenant not in access.tenants:
            return error(403, "this token may not read that tenant")
        try:
            first, second = int(params.get("from", "")), int(params.get("to", ""))
        except ValueError:
            return error(400, "from and to must be integers")
        try:
            doc = await asyncio.to_thread(consistency, self.api.store, origin, first, second)
        except ProofError as exc:
            return error(exc.status, str(exc))
        return JSONResponse(doc)

    def routes(self) -> list[BaseRoute]:
        auth = self.api.authenticated
        return [
            Route("/api/events/{event_id}/proof", auth(self.proof)),
            Route("/api/checkpoints", auth(self.checkpoints)),
            Route("/api/consistency", auth(self.consistency)),
            Route("/api/verify", self.api.admin_only(self.verify)),
            Route("/api/integrity-status", auth(self.status)),
        ]
