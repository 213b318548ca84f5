"""Admin API routes for retention, legal holds and restore (admin role only).

A tenant-scoped admin token acts on its own tenants only; running the whole job needs a token
for every tenant (``tenants: ["*"]``), since one run archives and expires all of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from receiver.admin.access import Access
from receiver.admin.errors import store_unavailable
from receiver.retention.archive import ArchiveError
from receiver.retention.restore import restore, status
from receiver.retention.service import RetentionError, RetentionService
from receiver.store.base import StoreUnavailable


def error(status_code: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status_code)


def parse_day(value: Any, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise RetentionError(f"{name}: not an ISO 8601 date: {str(value)[:40]!r}") from exc


class RetentionAPI:
    def __init__(self, service: RetentionService, access: Callable[[Request], Access | None]) -> None:
        self.service = service
        self._access = access

    def _admin(self, request: Request, tenant: str | None = None) -> Access | JSONResponse:
        access = self._access(request)
        if access is None:
            return error(401, "missing or unknown admin token")
        if not access.is_admin:
            return error(403, "retention and legal holds need an admin token")
        if access.tenants is not None and (tenant is None or tenant not in access.tenants):
            return error(
                403, "this token may not act on that tenant" if tenant else "needs a token for all tenants"
            )
        return access

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Response:
        try:
            result = await asyncio.to_thread(fn, *args)
        except (RetentionError, ArchiveError) as exc:
            return error(409, str(exc))
        except StoreUnavailable as exc:
            return store_unavailable(exc)
        if dataclasses.is_dataclass(result):
            result = dataclasses.asdict(result)  # type: ignore[arg-type]
        return JSONResponse(result)

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise RetentionError("the request body is not JSON") from exc
        if not isinstance(body, dict):
            raise RetentionError("the request body must be a JSON object")
        return body

    async def status(self, request: Request) -> Response:
        access = self._access(request)
        if access is None:
            return error(401, "missing or unknown admin token")
        if not access.is_admin:
            return error(403, "retention status needs an admin token")
        tenant = request.query_params.get("tenant")
        scope = access.tenants
        if tenant:
            scope = (tenant,) if scope is None or tenant in scope else ()
        return await self._call(lambda: {"tenants": status(self.service, scope)})

    async def run(self, request: Request) -> Response:
        checked = self._admin(request)
        if isinstance(checked, JSONResponse):
            return checked
        return await self._call(self.service.run)

    async def holds(self, request: Request) -> Response:
        access = self._access(request)
        if access is None:
            return error(401, "missing or unknown admin token")
        if not access.is_admin:
            return error(403, "legal holds need an admin token")

        def visible() -> dict[str, Any]:
            return {
                "holds": [
                    dataclasses.asdict(h)
                    for h in self.service.holds()
                    if access.tenants is None or h.tenant_id in access.tenants
                ]
            }

        return await self._call(visible)

    async def add_hold(self, request: Request) -> Response:
        try:
            body = await self._body(request)
        except RetentionError as exc:
            return error(400, str(exc))
        tenant = str(body.get("tenant") or "")
        checked = self._admin(request, tenant)
        if isinstance(checked, JSONResponse):
            return checked
        reason = str(body.get("reason") or "")[:1024]
        return await self._call(
            lambda: {"tenant": tenant, "changed": self.service.set_hold(tenant, True, reason, checked.name)}
        )

    async def remove_hold(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        checked = self._admin(request, tenant)
        if isinstance(checked, JSONResponse):
            return checked
        reason = request.query_params.get("reason", "")[:1024]
        return await self._call(
            lambda: {"tenant": tenant, "changed": self.service.set_hold(tenant, False, reason, checked.name)}
        )

    async def restore(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            tenant = str(body.get("tenant") or "")
            since = parse_day(body.get("since"), "since")
            until = parse_day(body.get("until"), "until")
        except RetentionError as exc:
            return error(400, str(exc))
        checked = self._admin(request, tenant)
        if isinstance(checked, JSONResponse):
            return checked
        return await self._call(restore, self.service, tenant, since, until)

    def routes(self) -> list[Route]:
        return [
            Route("/api/retention/status", self.status, methods=["GET"]),
            Route("/api/retention/run", self.run, methods=["POST"]),
            Route("/api/holds", self.holds, methods=["GET"]),
            Route("/api/holds", self.add_hold, methods=["POST"]),
            Route("/api/holds/{tenant}", self.remove_hold, methods=["DELETE"]),
            Route("/api/restore", self.restore, methods=["POST"]),
        ]
