"""Browser sessions of the admin UI (issue 15 item 8, docs/SESSIONS.md).

``POST /api/session`` with ``Authorization: Bearer <token>`` answers an HttpOnly, SameSite=Strict
cookie (Secure over TLS) that names the token by a fingerprint and is signed with a key derived
from the token itself, with the time it was made. ``SessionCookies`` turns a valid cookie back
into that ``Authorization`` header before any route runs, so every route authenticates exactly
as for header clients, and the token never reaches a page script. Any receiver sharing the
config verifies the cookie without a store; a token removed from the config ends its sessions.
A cookie that no longer works is answered 401 with why (``signed_out``), so the UI can say it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.datastructures import Headers
from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from receiver.admin.access import AdminAuthenticator
from receiver.admin.http import error
from receiver.pipeline.auth import bearer_token

COOKIE = "otel_audit_session"
SALT = "otel-audit admin session v1"
#: a state change authenticated by the cookie must carry this header (a page on another origin
#: cannot add it without a CORS preflight, which this server never grants)
CSRF_HEADER = "x-requested-with"
CSRF_VALUE = "otel-audit"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_PATH = "/api/session"
#: scope["state"] key set when the Authorization header came from the cookie
FROM_COOKIE = "otel_audit_session"

REASONS = {
    "expired": "your session expired: sign in again",
    "revoked": "the token this session was signed in with is no longer accepted (revoked): sign in with a current token",
    "invalid": "the session cookie is not valid: sign in again",
}


def fingerprint(token: str) -> str:
    """Names a token in its cookie without revealing it."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Opened:
    token: str | None
    #: why not: a key of REASONS
    reason: str = ""


class SessionKeys:
    """Mints and opens session cookies for the configured admin tokens."""

    def __init__(self, tokens: Iterable[str], ttl_seconds: int) -> None:
        self._by_fingerprint = {fingerprint(t): t for t in tokens}
        self.ttl_seconds = ttl_seconds

    @staticmethod
    def _serializer(token: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(token, salt=SALT)

    def mint(self, token: str) -> str:
        return self._serializer(token).dumps({"fp": fingerprint(token)})

    def open(self, cookie: str) -> Opened:
        _, payload = self._serializer("").loads_unsafe(cookie)  # unverified: only to find the key
        fp = payload.get("fp") if isinstance(payload, dict) else None
        if not isinstance(fp, str):
            return Opened(None, "invalid")
        token = self._by_fingerprint.get(fp)
        if token is None:
            return Opened(None, "revoked")
        try:
            self._serializer(token).loads(cookie, max_age=self.ttl_seconds)
        except SignatureExpired:
            return Opened(None, "expired")
        except BadSignature:
            return Opened(None, "invalid")
        return Opened(token)


def _cookie_value(headers: Headers) -> str | None:
    # starlette's lenient parser: one malformed cookie of another app does not hide ours
    return cookie_parser(headers.get("cookie", "")).get(COOKIE)


def _secure(scope: Scope, always: bool) -> bool:
    return always or scope.get("scheme") == "https"


def set_cookie(response: Response, value: str, secure: bool) -> None:
    # no Max-Age: the browser drops it when it closes; the signed time decides expiry, so an
    # expired cookie still reaches the server, which can then say why the session ended
    response.set_cookie(COOKIE, value, path="/", httponly=True, samesite="strict", secure=secure)


def clear_cookie(response: Response, secure: bool) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure)


class SessionCookies:
    """Pure ASGI middleware: a valid session cookie becomes the request's Authorization header."""

    def __init__(
        self, app: ASGIApp, auth: AdminAuthenticator, keys: SessionKeys, secure: bool = False
    ) -> None:
        self.app = app
        self.auth = auth
        self.keys = keys
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.auth.required:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookie = _cookie_value(headers)
        if cookie is None or "authorization" in headers:  # header clients: the cookie is not used
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        opened = self.keys.open(cookie)
        if opened.token is None:
            if path.startswith("/api/") and path != SESSION_PATH:
                answer = JSONResponse(
                    {"error": REASONS[opened.reason], "signed_out": opened.reason}, status_code=401
                )
                clear_cookie(answer, _secure(scope, self.secure))
                await answer(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS and headers.get(CSRF_HEADER) != CSRF_VALUE:
            answer = error(
                403, f"a session request that changes state needs the header {CSRF_HEADER}: {CSRF_VALUE}"
            )
            await answer(scope, receive, send)
            return
        raw = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
        raw.append((b"authorization", f"Bearer {opened.token}".encode()))
        state = dict(scope.get("state") or {})
        state[FROM_COOKIE] = True
        await self.app({**scope, "headers": raw, "state": state}, receive, send)


class SessionRoutes:
    """``POST /api/session`` (sign in: bearer token → cookie) and ``DELETE /api/session`` (sign out)."""

    def __init__(self, auth: AdminAuthenticator, keys: SessionKeys, secure: bool = False) -> None:
        self.auth = auth
        self.keys = keys
        self.secure = secure

    async def session(self, request: Request) -> Response:
        secure = _secure(request.scope, self.secure)
        if request.method == "DELETE":
            answer = Response(status_code=204)
            clear_cookie(answer, secure)
            return answer
        if request.scope.get("state", {}).get(FROM_COOKIE):
            return error(401, "a session is started with a token: send 'Authorization: Bearer <token>'")
        access = self.auth.authenticate(request.headers.get("authorization"))
        if access is None:
            return error(401, "missing or unknown admin token: send 'Authorization: Bearer <token>'")
        expires = time.time() + self.keys.ttl_seconds
        answer = JSONResponse(
            {
                "name": access.name,
                "role": access.role,
                "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
                "open": not self.auth.required,
            }
        )
        if self.auth.required:
            token = bearer_token(request.headers.get("authorization"))
            assert token is not None  # authenticate() accepted it
            set_cookie(answer, self.keys.mint(token), secure)
        return answer

    def routes(self) -> list[BaseRoute]:
        return [Route(SESSION_PATH, self.session, methods=["POST", "DELETE"])]
