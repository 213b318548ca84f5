"""AuditInstrumentor: wraps Starlette's middleware stack from environment settings, and unwraps."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points

import pytest
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
from otel_audit.instrumentor import AuditInstrumentor, load_callable, middleware_options_from_env


async def show(request: Request) -> PlainTextResponse:
    otel_audit.record(action="read", resource_type="invoice", resource_id=request.path_params["id"])
    return PlainTextResponse("ok")


def tenant_of(scope: dict[str, object]) -> str:
    return "tenant-from-resolver"


def _app() -> Starlette:
    return Starlette(routes=[Route("/invoices/{id}", show, methods=["GET", "DELETE"])])


@pytest.fixture
def instrumented(captured: Captured, monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    monkeypatch.setenv("OTEL_AUDIT_SENSITIVE_ROUTES", "DELETE /invoices/{id}=invoice")
    monkeypatch.setenv("OTEL_AUDIT_USER_HEADER", "x-user-id")
    monkeypatch.setenv("OTEL_AUDIT_TENANT_RESOLVER", f"{__name__}:tenant_of")
    monkeypatch.setenv("OTEL_AUDIT_TRUSTED_PROXIES", "127.0.0.0/8")
    instrumentor = AuditInstrumentor()
    instrumentor.instrument(logger_provider=captured.provider)
    try:
        yield captured
    finally:
        instrumentor.uninstrument()


def test_instrumentor_wraps_starlette_apps(instrumented: Captured) -> None:
    assert getattr(Starlette.build_middleware_stack, "__otel_audit_original__", None) is not None
    app = _app()
    headers = {"x-user-id": "dave", "x-forwarded-for": "198.51.100.1"}
    assert call(app, "GET", "/invoices/9", headers=headers, client=("127.0.0.1", 1)).text == "ok"
    call(app, "DELETE", "/invoices/9", headers=headers, client=("127.0.0.1", 1))
    assert isinstance(app.middleware_stack, AuditMiddleware)
    read, handler_delete, audited_delete = instrumented.records()
    assert read.event_name == "audit.invoice.read" and audited_delete.event_name == "audit.invoice.delete"
    for rec in (read, audited_delete):
        a = rec.attributes
        assert (a[attr.USER_ID], a[attr.TENANT_ID], a[attr.CLIENT_ADDRESS]) == (
            "dave",
            "tenant-from-resolver",
            "198.51.100.1",
        )
        assert a[attr.HTTP_ROUTE] == "/invoices/{id}"
    assert audited_delete.attributes[attr.HTTP_STATUS] == 200
    assert handler_delete.attributes[attr.ACTION] == "read"


def test_uninstrument_restores_starlette(captured: Captured) -> None:
    original = Starlette.build_middleware_stack
    instrumentor = AuditInstrumentor()
    instrumentor.instrument(logger_provider=captured.provider)
    assert Starlette.build_middleware_stack is not original
    instrumentor.uninstrument()
    assert Starlette.build_middleware_stack is original
    app = _app()
    call(app, "GET", "/invoices/1", headers={"x-user-id": "dave"})
    assert not isinstance(app.middleware_stack, AuditMiddleware)
    assert captured.one().attributes[attr.USER_ID] == ""  # record() still works, no request context


def test_options_from_env() -> None:
    options = middleware_options_from_env(
        {
            "OTEL_AUDIT_SENSITIVE_ROUTES": "GET /patients/{id}=patient;DELETE /documents/{id}=document",
            "OTEL_AUDIT_TRUSTED_PROXIES": "10.0.0.0/8, 172.16.0.0/12",
            "OTEL_AUDIT_USER_HEADER": "x-user",
            "OTEL_AUDIT_TENANT_HEADER": "x-tenant",
            "OTEL_AUDIT_ACTOR_TYPE": "service",
        }
    )
    assert [(r.resource_type, sorted(r.methods)) for r in options["sensitive"]] == [
        ("patient", ["GET"]),
        ("document", ["DELETE"]),
    ]
    assert options["trusted_proxies"] == ["10.0.0.0/8", "172.16.0.0/12"]
    assert options["actor_type"] == "service"
    scope = {"headers": [(b"x-user", b"erin"), (b"x-tenant", b"acme")]}
    assert options["user_resolver"](scope) == "erin" and options["tenant_resolver"](scope) == "acme"
    assert "session_resolver" not in options
    assert load_callable(f"{__name__}:tenant_of") is tenant_of
    with pytest.raises(ValueError):
        load_callable("no_colon")


def test_entry_point_is_registered() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="opentelemetry_instrumentor")}
    if "otel_audit" not in names:
        pytest.skip("otel-audit is not installed (running from a source tree)")
    assert names["otel_audit"] == "otel_audit.instrumentor:AuditInstrumentor"
