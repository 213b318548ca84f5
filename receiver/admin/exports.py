"""Streamed exports: ``/api/export.csv``, ``/api/export.jsonl`` (SPEC section 5) and
``/api/export.parquet``, each of every event matching the filters, in the caller's scope.

The body starts at once and memory stays flat whatever the size: the store streams the answer
(CSV and JSON lines formatted by the engine, Parquet written batch by batch) and each chunk is
pulled from a worker thread only when the previous one has been sent. A client that goes away
closes the engine's stream.

A browser download cannot carry an ``Authorization`` header, and tokens never go into URLs:
the UI first asks ``POST /api/export-tickets`` (with its token) for a ticket, a random value
that is good for one download within a minute, and puts that in the download link instead.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from receiver.admin.access import Access
from receiver.admin.http import error, one_value
from receiver.admin.trail import EVENTS_RESOURCE, query_attributes, tenants_read
from receiver.filters import EventFilter, multi_params
from receiver.formats import CSV_HEADER, parquet_chunks
from receiver.store.base import AuditStore

if TYPE_CHECKING:
    from receiver.admin.api import AdminAPI

TICKET_SECONDS = 60.0
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class ExportFormat:
    name: str
    media_type: str
    #: the store's stream of this format's body (without the CSV header)
    body: Callable[[AuditStore, EventFilter], Iterator[bytes]]
    header: bytes = b""


FORMATS = {
    "csv": ExportFormat("csv", "text/csv; charset=utf-8", lambda s, f: s.iter_csv(f), CSV_HEADER),
    "jsonl": ExportFormat("jsonl", "application/x-ndjson; charset=utf-8", lambda s, f: s.iter_jsonl(f)),
    "parquet": ExportFormat(
        "parquet", "application/vnd.apache.parquet", lambda s, f: parquet_chunks(s.iter_batches(f))
    ),
}


class Tickets:
    """One-time download tickets → the access that asked for them."""

    def __init__(self, lifetime: float = TICKET_SECONDS) -> None:
        self._lifetime = lifetime
        self._tickets: dict[str, tuple[Access, float]] = {}
        self._lock = threading.Lock()

    def issue(self, access: Access) -> str:
        ticket = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._tickets = {t: v for t, v in self._tickets.items() if v[1] > now}
            self._tickets[ticket] = (access, now + self._lifetime)
        return ticket

    def redeem(self, ticket: str) -> Access | None:
        with self._lock:
            found = self._tickets.pop(ticket, None)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]


async def _pull(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Each chunk is made in a worker thread when the client is ready for it; the stream is
    closed (and the engine's query with it) when the response ends, however it ends."""
    try:
        while True:
            chunk = await anyio.to_thread.run_sync(next, chunks, None)
            if chunk is None:
                return
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class ExportRoutes:
    def __init__(self, api: AdminAPI) -> None:
        self.api = api
        self.tickets = Tickets()

    async def issue_ticket(self, request: Request, access: Access) -> Response:
        return JSONResponse({"ticket": self.tickets.issue(access), "expires_in": int(TICKET_SECONDS)})

    def endpoint(self, fmt: ExportFormat) -> Callable[[Request], object]:
        async def handle(request: Request) -> Response:
            params = multi_params(request.query_params.multi_items())
            ticket = one_value(params.pop("ticket", None))
            access = self.tickets.redeem(ticket) if ticket else self.api.access(request)
            if access is None:
                return error(401, "missing or unknown admin token (or an expired download ticket)")

            async def run(request: Request, access: Access) -> Response:
                return await self.export(request, access, fmt, params)

            return await self.api.guarded(run, request, access)

        return handle

    async def export(
        self, request: Request, access: Access, fmt: ExportFormat, params: dict[str, list[str]]
    ) -> Response:
        api = self.api
        if not access.can_export:  # a viewer token minted without can_export (receiver/viewer/)
            return error(403, "this token may not export")
        flt = api.parse_scoped(params, access)
        if flt.visible_nothing():
            return await api.refuse_other_tenant(request, access, flt, "export")
        store = api.store
        if flt.single_tenant is None:  # one scan for the total and the tenants the event names
            counts = await asyncio.to_thread(store.tenant_counts, flt)
            total, seen = sum(counts.values()), list(counts)
        else:
            total, seen = await asyncio.to_thread(store.count, flt), []
        # recorded before the first byte leaves, so an export cannot go unrecorded
        await api.record(
            request,
            access,
            "export",
            tenants_read(access, flt.single_tenant, seen),
            resource_id=EVENTS_RESOURCE,
            reason=f"exported audit events as {fmt.name}: {total} matching",
            attributes=query_attributes(
                params, {"audit.export.format": fmt.name, "audit.result.count": str(total)}
            ),
        )
        # the export's own audit event is stored by now and may match its filters: count again
        total = await asyncio.to_thread(store.count, flt)
        body = fmt.body(store, flt)
        # the first chunk is made before answering, so a failing store still gets a 503
        first = await anyio.to_thread.run_sync(next, body, None)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        headers = {
            "content-disposition": f'attachment; filename="{file_stem(flt, access, params)}-{stamp}.{fmt.name}"',
            "x-total-count": str(total),
            "cache-control": "no-store",
        }
        return StreamingResponse(
            _pull(_chain(fmt.header, first, body)), media_type=fmt.media_type, headers=headers
        )

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/export-tickets", self.api.authenticated(self.issue_ticket), methods=["POST"]),
            *(Route(f"/api/export.{name}", self.endpoint(fmt)) for name, fmt in FORMATS.items()),
        ]


#: the UI's default exclusion of the audit trail's own events: not worth naming in a file
_TRAIL_EXCLUDED = "!audit.audit_log.*"


def file_stem(flt: EventFilter, access: Access, params: dict[str, list[str]]) -> str:
    """``audit-events-<tenant>[-<filter>-<value>…]``: the tenant asked for, else the token's only
    tenant, else ``all``; then the filters as given (issue 15 item 9), made filename-safe."""
    if flt.tenant:
        scope = flt.tenant.text()
    elif access.tenants is not None and len(access.tenants) == 1:
        scope = access.tenants[0]
    else:
        scope = "all"
    parts = [scope]
    for name in sorted(params):
        if name in ("tenant", "limit", "cursor", "ticket"):
            continue
        values = [v for v in params[name] if v and v != _TRAIL_EXCLUDED]
        if values:
            parts.append(f"{name}-{','.join(values)}")
    return "audit-events-" + _SAFE_NAME.sub("_", "-".join(parts))[:120].strip("_-")


def _chain(header: bytes, first: bytes | None, rest: Iterator[bytes]) -> Iterator[bytes]:
    try:
        if header:
            yield header
        if first is not None:
            yield first
            yield from rest
    finally:
        close = getattr(rest, "close", None)
        if close is not None:
            close()
