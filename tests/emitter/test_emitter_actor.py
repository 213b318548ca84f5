"""set_actor(): the actor named by the handler reaches record() and the middleware's own event
(issue 20: a user_resolver reading scope["state"] runs before authentication and gives nothing);
and the warning when uvicorn rewrote the client address from X-Forwarded-For."""

from __future__ import annotations

import logging
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from emitter_support import (
    Captured,
    call,
    captured_fixture,  # noqa: F401  (the `captured` fixture)
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import otel_audit
from otel_audit import attributes as attr
from otel_audit.asgi import AuditMiddleware


async def show_async(request: Request) -> PlainTextResponse:
    otel_audit.set_actor(user_id=request.headers["x-login"], tenant_id="acme")  # as authentication would
    otel_audit.record(action="read", resource_type="invoice", resource_id="in-handler")
    return PlainTextResponse("ok")


def show_sync(request: Request) -> PlainTextResponse:  # Starlette runs it in a thread
    otel_audit.set_actor(user_id=request.headers["x-login"], tenant_id="acme")
    otel_audit.record(action="read", resource_type="invoice", resource_id="in-handler")
    return PlainTextResponse("ok")


def _app(endpoint) -> AuditMiddleware:
    inner = Starlette(routes=[Route("/invoices/{id}", endpoint)])
    return AuditMiddleware(
        inner,
        user_resolver=lambda scope: scope["state"].get("user"),  # the README's old advice
        sensitive=["GET /invoices/{id}=invoice"],
    )


@pytest.mark.parametrize("endpoint", [show_async, show_sync])
def test_set_actor_reaches_record_and_the_sensitive_route_event(captured: Captured, endpoint) -> None:
    assert call(_app(endpoint), "GET", "/invoices/7", headers={"x-login": "alice"}).status_code == 200
    events = {a[attr.RESOURCE_ID]: a for a in captured.attrs()}
    assert set(events) == {"in-handler", "7"}
    for event in events.values():
        assert event[attr.USER_ID] == "alice" and event[attr.TENANT_ID] == "acme"


def test_without_set_actor_the_state_resolver_gives_no_user(captured: Captured) -> None:
    async def anonymous(request: Request) -> PlainTextResponse:
        otel_audit.record(action="read", resource_type="invoice", resource_id="in-handler")
        return PlainTextResponse("ok")

    call(_app(anonymous), "GET", "/invoices/7")
    assert {a[attr.USER_ID] for a in captured.attrs()} == {""}  # what the README now warns about


def test_set_actor_outside_a_request_sets_the_current_context(captured: Captured) -> None:
    with otel_audit.audit_context():
        otel_audit.set_actor(user_id="batch-job", actor_type="service")
        otel_audit.record(action="export", resource_type="report", resource_id="q3")
    assert captured.one().attributes[attr.USER_ID] == "batch-job"
    assert captured.one().attributes[attr.ACTOR_TYPE] == "service"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_once(app, proxy_headers: bool, forwarded_for: str) -> None:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, proxy_headers=proxy_headers, log_level="error", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        r = httpx.get(
            f"http://127.0.0.1:{port}/invoices/1", headers={"x-forwarded-for": forwarded_for, "x-login": "a"}
        )
        assert r.status_code == 200
    finally:
        server.should_exit = True
        thread.join(30)


def test_uvicorn_proxy_headers_rewrite_is_detected_once(captured: Captured, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="otel_audit")
    app = _app(show_async)
    _serve_once(app, proxy_headers=True, forwarded_for="198.51.100.66")  # uvicorn's default
    _serve_once(app, proxy_headers=True, forwarded_for="198.51.100.67")
    warnings = [r.getMessage() for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert len(warnings) == 1 and "--no-proxy-headers" in warnings[0] and "198.51.100.66" in warnings[0]
    assert {a[attr.CLIENT_ADDRESS] for a in captured.attrs()} == {"198.51.100.66", "198.51.100.67"}

    caplog.clear()
    captured.clear()
    _serve_once(_app(show_async), proxy_headers=False, forwarded_for="198.51.100.66")
    assert not [r for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    # trusted_proxies (none here) decides: the spoofed header is ignored
    assert {a[attr.CLIENT_ADDRESS] for a in captured.attrs()} == {"127.0.0.1"}
