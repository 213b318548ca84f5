"""The viewer's HTTP side: ``POST /api/viewer-tokens`` (admin role), the embeddable page
``GET /viewer`` (the admin UI's shell in viewer mode, framable only by ``viewer.frame_ancestors``),
its theme stylesheet and ``/viewer/embed.js`` for vendors who mount it with a script tag."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from receiver.admin.access import Access
from receiver.admin.http import error
from receiver.admin.ui import UI_DIR
from receiver.viewer.config import Viewer
from receiver.viewer.mint import describe, mint, parse_request
from receiver.viewer.tokens import TokenError

if TYPE_CHECKING:
    from receiver.admin.api import AdminAPI

EMBED_JS = UI_DIR / "viewer-embed.js"


def page_csp(config: Viewer) -> str:
    ancestors = " ".join(config.frame_ancestors) or "'none'"
    images = "'self' data:"
    if config.logo_url:
        parts = urlsplit(config.logo_url)
        images += f" {parts.scheme}://{parts.netloc}"
    return (
        f"default-src 'none'; script-src 'self'; style-src 'self'; img-src {images}; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {ancestors}"
    )


def viewer_shell(config: Viewer) -> str:
    """The admin UI's page in viewer mode: the same markup and script, plus the mode, the
    theme and the viewer's stylesheet (every value attribute-escaped; colours and URLs are
    validated by the config)."""
    page = (UI_DIR / "index.html").read_text(encoding="utf-8")
    attrs = {
        "data-mode": "viewer",
        "data-title": config.title,
        "data-logo": config.logo_url or "",
        "data-hidden": ",".join(config.hidden_fields),
    }
    extra = " ".join(f'{k}="{html.escape(v, quote=True)}"' for k, v in attrs.items())
    page = re.sub(r"<html\b", f"<html {extra}", page, count=1)
    page = re.sub(
        r"<title>.*?</title>", f"<title>{html.escape(config.title)}</title>", page, count=1, flags=re.S
    )
    links = (
        '<link rel="stylesheet" href="/ui/viewer.css">\n  <link rel="stylesheet" href="/viewer/theme.css">\n'
    )
    return page.replace("</head>", f"  {links}</head>", 1)


class ViewerRoutes:
    def __init__(self, api: AdminAPI, config: Viewer | None) -> None:
        self.api = api
        self.config = config or Viewer()

    async def mint_token(self, request: Request, access: Access) -> Response:
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError):
            return error(400, "send a JSON object: {tenant, ttl_seconds, actor, can_export}")
        req = parse_request(data)
        if access.tenants is not None and req.tenant not in access.tenants:
            return error(403, f"tenant {req.tenant!r} is not visible to this token")
        base = f"{request.url.scheme}://{request.url.netloc}"
        try:
            answer, claims = mint(self.config, req, base)
        except TokenError as exc:
            return error(409, str(exc))
        await self.api.record(
            request,
            access,
            "grant",
            (req.tenant,),
            resource_id=f"viewer-token:{claims.token_id}",
            reason=describe(claims),
            attributes={
                "audit.viewer.token_id": claims.token_id,
                "audit.viewer.actor": claims.actor or "",
                "audit.viewer.can_export": str(claims.can_export).lower(),
                "audit.viewer.expires_at": answer["expires_at"],
            },
        )
        return JSONResponse(answer, headers={"cache-control": "no-store"})

    async def page(self, request: Request) -> Response:
        return Response(
            viewer_shell(self.config),
            media_type="text/html",
            headers={
                "content-security-policy": page_csp(self.config),
                "referrer-policy": "no-referrer",
                "cache-control": "no-cache",
            },
        )

    async def theme(self, request: Request) -> Response:
        rules = [":root {"]
        if self.config.accent_color:  # validated #rgb/#rrggbb: nothing else reaches the CSS
            rules.append(f"  --brand: {self.config.accent_color};")
        rules.append("}")
        return Response("\n".join(rules) + "\n", media_type="text/css", headers={"cache-control": "no-cache"})

    async def embed(self, request: Request) -> Response:
        return Response(
            EMBED_JS.read_text(encoding="utf-8"),
            media_type="text/javascript",
            headers={"cache-control": "no-cache", "cross-origin-resource-policy": "cross-origin"},
        )

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/viewer-tokens", self.api.admin_only(self.mint_token), methods=["POST"]),
            Route("/viewer", self.page),
            Route("/viewer/events/{event_id}", self.page),
            Route("/viewer/theme.css", self.theme),
            Route("/viewer/embed.js", self.embed),
        ]
