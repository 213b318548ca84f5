"""The admin UI: static files checked in under ``receiver/admin/ui/`` (no build step, no CDN),
served by the admin app, and the security headers every admin answer carries.

The page is one HTML shell; ``/``, ``/events/{id}``, ``/compliance``, ``/alerts``, ``/retention``
and ``/streams`` all answer it and the script renders the view the URL names. The
Content-Security-Policy allows only this origin's
own script and style: no inline script, no eval, no framing, so even a value that slipped past
the script's text-only rendering could not run.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UI_DIR = Path(str(resources.files("receiver.admin") / "ui"))

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


async def shell(request: Request) -> Response:
    return FileResponse(UI_DIR / "index.html", headers={"cache-control": "no-cache"})


def ui_routes() -> list[BaseRoute]:
    return [
        Route("/", shell),
        Route("/events/{event_id}", shell),
        Route("/compliance", shell),
        Route("/alerts", shell),
        Route("/retention", shell),
        Route("/streams", shell),
        Mount("/ui", app=StaticFiles(directory=UI_DIR), name="ui"),
    ]


class SecurityHeaders:
    """Pure ASGI middleware: adds SECURITY_HEADERS to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if b"content-security-policy" in present:
                    # a page with its own policy (the embeddable viewer) says who may frame it there
                    present.add(b"x-frame-options")
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
