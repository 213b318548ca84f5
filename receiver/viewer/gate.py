"""Where a viewer token may go (SPEC section 9): pure ASGI middleware in front of the admin app.

A request carrying a viewer token is answered 401 (JSON reason) when the token is bad, expired or
revoked, 403 on any route but the few a tenant's audit log needs, and passed on otherwise (the
routes then scope it like any token: ``receiver/viewer/access.py``). An allow-list, so a route
added later is closed to viewers until it is listed here."""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from receiver.pipeline.auth import bearer_token
from receiver.viewer.access import check
from receiver.viewer.config import Viewer
from receiver.viewer.tokens import TokenError, is_viewer_token

_UUID = r"[0-9a-fA-F-]{1,64}"
READ_ROUTES = (
    re.compile(r"^/api/events$"),
    re.compile(rf"^/api/events/{_UUID}$"),
    re.compile(rf"^/api/events/{_UUID}/proof$"),
    re.compile(r"^/api/stats$"),
)
EXPORT_ROUTES = (re.compile(r"^/api/export\.(csv|jsonl|parquet)$"),)
#: the UI's download ticket (``receiver/admin/exports.py``) is part of an export
TICKET_ROUTE = "/api/export-tickets"


def allowed(method: str, path: str, can_export: bool) -> bool:
    if method in ("GET", "HEAD"):
        if any(r.match(path) for r in READ_ROUTES):
            return True
        return can_export and any(r.match(path) for r in EXPORT_ROUTES)
    return can_export and method == "POST" and path == TICKET_ROUTE


class ViewerGate:
    def __init__(self, app: ASGIApp, config: Viewer | None) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            token = bearer_token(Headers(scope=scope).get("authorization"))
            if is_viewer_token(token):
                answer = self.refusal(scope, token or "")
                if answer is not None:
                    await answer(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope, token: str) -> JSONResponse | None:
        try:
            access = check(token, self.config)
        except TokenError as exc:
            return JSONResponse({"error": str(exc)}, status_code=401)
        if not allowed(scope["method"], scope["path"], access.can_export):
            what = "export" if "/export" in scope["path"] else "this route"
            return JSONResponse({"error": f"a viewer token may not use {what}"}, status_code=403)
        return None
