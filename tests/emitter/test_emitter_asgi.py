"""AuditMiddleware: request context, client address, sensitive routes, outcomes and trace ids."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from emitter_support import (
    Captured,
    call,
    captured_fixture,  # noqa: F401  (the `captured` fixture)
)
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

import otel_audit
from otel_audit import attributes as attr
from otel_audit.asgi import AuditMiddleware, header_resolver
from otel_audit.routes import SensitiveRoute


async def whoami(request: Request) -> JSONResponse:
    otel_audit.record(action="read", resource_type="profile", resource_id="me")
    ctx = otel_audit.current_context()
    return JSONResponse(
        {"user": ctx.user_id, "tenant": ctx.tenant_id, "ip": ctx.ip_address, "route": ctx.route()}
    )


async def patient(request: Request) -> Response:
    request.scope["auth_user"] = "carol"  # as an inner authentication middleware would
    return JSONResponse({"id": request.path_params["id"]})


async def status(request: Request) -> Response:
    return Response(status_code=int(request.path_params["code"]))


async def boom(request: Request) -> Response:
    raise RuntimeError("handler failed")


async def delete_doc(request: Request) -> Response:
    return Response(status_code=204)


async def tenant_from_header(scope: Any) -> str | None:
    await asyncio.sleep(0)
    for name, value in scope["headers"]:
        if name == b"x-tenant":
            return str(value.decode())
    return None


RULES = [
    SensitiveRoute(path="/patients/{id}", resource_type="patient", methods={"GET"}),
    SensitiveRoute(path="/status/{code}", resource_type="probe", id_param="code"),
    SensitiveRoute(path="/boom/{id}", resource_type="bomb"),
    "DELETE /documents/{doc_id}=document",
    SensitiveRoute(path="/api/items/{id}", resource_type="item", action="export"),
]


def make_app(**overrides: Any) -> AuditMiddleware:
    inner = Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/patients/{id}", patient, methods=["GET", "POST"]),
            Route("/status/{code:int}", status),
            Route("/boom/{id}", boom),
            Route("/documents/{doc_id:int}", delete_doc, methods=["DELETE"]),
            Mount("/api", routes=[Route("/items/{id}", whoami)]),
        ]
    )
    options: dict[str, Any] = {
        "user_resolver": lambda scope: scope.get("auth_user") or header_resolver("x-user")(scope),
        "tenant_resolver": tenant_from_header,
        "trusted_proxies": ["10.0.0.0/8", "fd00::/8"],
        "sensitive": RULES,
    }
    options.update(overrides)
    return AuditMiddleware(inner, **options)


HEADERS = {"x-user": "alice", "x-tenant": "acme", "user-agent": "pytest-agent"}


def test_handler_inherits_request_context(captured: Captured) -> None:
    resp = call(make_app(), "GET", "/whoami", headers=HEADERS)
    assert resp.json() == {"user": "alice", "tenant": "acme", "ip": "203.0.113.9", "route": "/whoami"}
    event = captured.attrs()[0]
    assert event[attr.USER_ID] == "alice" and event[attr.TENANT_ID] == "acme"
    assert event[attr.CLIENT_ADDRESS] == "203.0.113.9" and event[attr.USER_AGENT] == "pytest-agent"
    assert event[attr.HTTP_METHOD] == "GET" and event[attr.HTTP_ROUTE] == "/whoami"
    assert attr.HTTP_STATUS not in event
    assert otel_audit.current_context() == otel_audit.AuditContext()


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.9", "198.51.100.7", "203.0.113.9"),  # untrusted peer: XFF ignored
        ("10.1.2.3", "198.51.100.7", "198.51.100.7"),  # trusted proxy: XFF honoured
        ("10.1.2.3", "6.6.6.6, 198.51.100.7, 10.0.0.2", "198.51.100.7"),  # right-most untrusted
        ("10.1.2.3", "10.0.0.5, 10.0.0.2", "10.0.0.5"),  # all trusted: left-most
        ("fd00::1", "[2001:db8::5]:443", "2001:db8::5"),
    ],
)
def test_forwarded_for_only_from_trusted_proxies(
    captured: Captured, peer: str, xff: str, expected: str
) -> None:
    resp = call(
        make_app(), "GET", "/whoami", headers={**HEADERS, "x-forwarded-for": xff}, client=(peer, 5000)
    )
    assert resp.json()["ip"] == expected
    assert captured.attrs()[0][attr.CLIENT_ADDRESS] == expected


def test_no_trusted_proxies_means_peer_address(captured: Captured) -> None:
    resp = call(
        make_app(trusted_proxies=()),
        "GET",
        "/whoami",
        headers={"x-forwarded-for": "1.1.1.1"},
        client=("10.1.2.3", 1),
    )
    assert resp.json()["ip"] == "10.1.2.3"


def test_sensitive_read_event_after_response(captured: Captured) -> None:
    resp = call(make_app(), "GET", "/patients/p-42", headers=HEADERS)
    assert resp.status_code == 200
    rec = captured.one()
    assert rec.event_name == "audit.patient.read"
    a = dict(rec.attributes)
    assert (a[attr.RESOURCE_ID], a[attr.OUTCOME], a[attr.HTTP_STATUS]) == ("p-42", "success", 200)
    assert (a[attr.HTTP_ROUTE], a[attr.TENANT_ID]) == ("/patients/{id}", "acme")
    assert a[attr.USER_ID] == "alice"  # resolved before the request
    captured.clear()
    call(make_app(), "POST", "/patients/p-42", headers=HEADERS)  # rule covers GET only
    assert captured.records() == []


def test_resolver_is_asked_again_after_the_response(captured: Captured) -> None:
    call(make_app(), "GET", "/patients/p-1", headers={"x-tenant": "acme"})
    assert captured.one().attributes[attr.USER_ID] == "carol"


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (200, "success"),
        (302, "success"),
        (401, "denied"),
        (403, "denied"),
        (404, "failure"),
        (500, "failure"),
    ],
)
def test_status_to_outcome(captured: Captured, code: int, outcome: str) -> None:
    call(make_app(), "GET", f"/status/{code}", headers=HEADERS)
    a = captured.attrs()[0]
    assert (a[attr.OUTCOME], a[attr.HTTP_STATUS], a[attr.RESOURCE_ID], a[attr.ACTION]) == (
        outcome,
        code,
        str(code),
        "read",
    )
    assert a[attr.HTTP_ROUTE] == "/status/{code}"


def test_exception_is_failure_and_reraised(captured: Captured) -> None:
    with pytest.raises(RuntimeError, match="handler failed"):
        call(make_app(), "GET", "/boom/b1", headers=HEADERS)
    rec = captured.one()
    assert rec.attributes[attr.OUTCOME] == "failure" and rec.attributes[attr.HTTP_STATUS] == 500
    assert rec.body == "unhandled RuntimeError"


def test_delete_rule_from_string_with_converter_and_mount(captured: Captured) -> None:
    call(make_app(), "DELETE", "/documents/17", headers=HEADERS)
    call(make_app(), "GET", "/api/items/i-9", headers=HEADERS)
    recs = captured.records()
    names = [r.event_name for r in recs]
    assert names == ["audit.document.delete", "audit.profile.read", "audit.item.export"]
    assert recs[0].attributes[attr.RESOURCE_ID] == "17" and recs[0].attributes[attr.HTTP_STATUS] == 204
    assert recs[1].attributes[attr.HTTP_ROUTE] == "/api/items/{id}"
    assert recs[2].attributes[attr.RESOURCE_ID] == "i-9"


def test_broken_resolver_does_not_break_the_request(captured: Captured) -> None:
    def broken(scope: Any) -> str:
        raise KeyError("no user")

    errors = otel_audit.stats().errors
    resp = call(make_app(user_resolver=broken), "GET", "/whoami", headers=HEADERS)
    assert resp.status_code == 200 and resp.json()["user"] is None
    assert captured.attrs()[0][attr.USER_ID] == ""
    assert otel_audit.stats().errors > errors


def test_non_http_scopes_pass_through(captured: Captured) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    scope = {"type": "lifespan"}
    asyncio.run(make_app().__class__(app, sensitive=RULES)(scope, None, None))  # type: ignore[arg-type]
    assert seen == [scope] and captured.records() == []


def test_events_carry_the_request_span(captured: Captured) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    app = OpenTelemetryMiddleware(make_app(), tracer_provider=tracer_provider)
    call(app, "GET", "/api/items/i-1", headers=HEADERS)
    (server,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    handler_event, route_event = captured.records()
    for rec in (handler_event, route_event):
        assert rec.trace_id == server.context.trace_id != 0
        assert rec.span_id == server.context.span_id
    assert json.loads(json.dumps(dict(route_event.attributes)))[attr.ACTION] == "export"
