"""otel_audit → OTLP/gRPC → receiver → chDB, end to end with the real SDK exporter."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time

import httpx
import pytest
from conftest import REPO, free_port
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import otel_audit
from otel_audit.asgi import AuditMiddleware
from receiver.filters import EventFilter


@pytest.fixture
def emitter(receiver):
    handle = otel_audit.configure(endpoint=f"http://127.0.0.1:{receiver.grpc_port}", service_name="e2e-svc")
    yield handle
    otel_audit.shutdown()


def test_n_events_arrive_as_n_rows_with_every_column(emitter, store):
    ids = []
    with otel_audit.audit_context(
        user_id="alice",
        tenant_id="acme",
        ip_address="198.51.100.7",
        user_agent="pytest-agent",
        session_id="sess-9",
    ):
        for i in range(50):
            ids.append(
                otel_audit.record(
                    action="update",
                    resource_type="document",
                    resource_id=f"doc-{i}",
                    before={"title": "Old", "owner": {"name": "a"}, "password": "hunter2"},
                    after={"title": f"New {i}", "owner": {"name": "b"}, "password": "hunter3"},
                    reason=f"edit {i}",
                    ticket=f"T-{i}",
                )
            )
    assert otel_audit.force_flush()
    rows = {r["id"]: r for r in store.search(EventFilter(), 1000)}
    assert sorted(rows) == sorted(ids)
    row = rows[ids[7]]
    assert row["tenant_id"] == "acme" and row["user_id"] == "alice" and row["actor_type"] == "user"
    assert (row["action"], row["outcome"], row["resource_type"], row["resource_id"]) == (
        "update",
        "success",
        "document",
        "doc-7",
    )
    assert row["event_name"] == "audit.document.update"
    assert row["changes"] == {
        "title": {"old": "Old", "new": "New 7"},
        "owner.name": {"old": "a", "new": "b"},
        "password": {"old": "[REDACTED]", "new": "[REDACTED]"},
    }
    assert (row["ip_address"], row["user_agent"], row["session_id"]) == (
        "198.51.100.7",
        "pytest-agent",
        "sess-9",
    )
    assert row["reason"] == "edit 7" and row["service_name"] == "e2e-svc"
    assert row["attributes"].get("ticket") == "T-7"
    created = dt.datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 120


def test_compliance_helpers_store_the_expected_events(emitter, store):
    with otel_audit.audit_context(tenant_id="acme", ip_address="192.0.2.1"):
        otel_audit.login_success("alice")
        otel_audit.login_failure("", reason="bad password")
        otel_audit.logout("alice")
        otel_audit.sensitive_read("patient", "p-1", fields=["ssn", "dob"], user_id="carol")
        otel_audit.permission_granted(
            "role", "editor", permission="documents:write", grantee="bob", user_id="carol"
        )
        otel_audit.permission_revoked(
            "role", "editor", permission="documents:write", grantee="bob", user_id="carol"
        )
        otel_audit.created("document", "d-1", after={"title": "x"}, user_id="bob")
        otel_audit.deleted("document", "d-1", before={"title": "x"}, user_id="bob")
    assert otel_audit.force_flush()
    rows = store.search(EventFilter(), 100)
    got = sorted((r["action"], r["outcome"], r["user_id"]) for r in rows)
    assert got == sorted(
        [
            ("login", "success", "alice"),
            ("login", "failure", ""),
            ("logout", "success", "alice"),
            ("read", "success", "carol"),
            ("grant", "success", "carol"),
            ("revoke", "success", "carol"),
            ("create", "success", "bob"),
            ("delete", "success", "bob"),
        ]
    )
    failed = next(r for r in rows if r["outcome"] == "failure")
    assert failed["reason"] == "bad password" and failed["ip_address"] == "192.0.2.1"


def test_asgi_app_behind_audit_and_otel_middleware(emitter, store):
    async def show(request: Request) -> JSONResponse:
        otel_audit.record(action="export", resource_type="report", resource_id="r-1")
        return JSONResponse({"id": request.path_params["doc_id"]})

    app = Starlette(routes=[Route("/documents/{doc_id}", show)])
    audited = AuditMiddleware(
        app,
        user_resolver=lambda scope: dict(scope["headers"]).get(b"x-user", b"").decode() or None,
        tenant_resolver=lambda scope: "acme",
        trusted_proxies=["10.0.0.0/8"],
        sensitive=[
            otel_audit.SensitiveRoute(
                methods={"GET"}, path="/documents/{doc_id}", resource_type="document", id_param="doc_id"
            )
        ],
    )
    tracer_provider = TracerProvider()
    traced = OpenTelemetryMiddleware(audited, tracer_provider=tracer_provider)

    async def call() -> None:
        transport = httpx.ASGITransport(app=traced, client=("10.1.2.3", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            response = await client.get(
                "/documents/d-42",
                headers={"x-user": "dave", "user-agent": "ua/1", "x-forwarded-for": "203.0.113.50, 10.9.9.9"},
            )
            assert response.status_code == 200

    import asyncio

    asyncio.run(call())
    assert otel_audit.force_flush()
    rows = store.search(EventFilter(), 10)
    assert len(rows) == 2
    by_action = {r["action"]: r for r in rows}
    read = by_action["read"]
    assert (read["user_id"], read["tenant_id"], read["resource_type"], read["resource_id"]) == (
        "dave",
        "acme",
        "document",
        "d-42",
    )
    assert read["ip_address"] == "203.0.113.50"  # right-most untrusted hop, the peer is a trusted proxy
    assert read["user_agent"] == "ua/1"
    assert (read["http_method"], read["http_route"], read["http_status"]) == (
        "GET",
        "/documents/{doc_id}",
        200,
    )
    inner = by_action["export"]
    assert inner["user_id"] == "dave" and inner["ip_address"] == "203.0.113.50"
    assert len(read["trace_id"]) == 32 and read["trace_id"] != "0" * 32
    assert inner["trace_id"] == read["trace_id"]


APP_SOURCE = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def patient(request):
    return PlainTextResponse("ok")

app = Starlette(routes=[Route("/patients/{id}", patient)])
"""


def test_opentelemetry_instrument_applies_the_middleware_with_no_code_change(receiver, store, tmp_path):
    (tmp_path / "plainapp.py").write_text(APP_SOURCE)
    port = free_port()
    env = dict(
        os.environ,
        PYTHONPATH=f"{tmp_path}:{REPO}",
        OTEL_AUDIT_ENDPOINT=f"http://127.0.0.1:{receiver.grpc_port}",
        OTEL_AUDIT_SERVICE_NAME="instrumented-app",
        OTEL_AUDIT_SENSITIVE_ROUTES="GET /patients/{id}=patient",
        OTEL_AUDIT_USER_HEADER="x-user",
        OTEL_AUDIT_TENANT_HEADER="x-tenant",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    instrument = os.path.join(os.path.dirname(sys.executable), "opentelemetry-instrument")
    if not os.path.exists(instrument):
        pytest.skip("opentelemetry-instrument is not installed in this environment")
    uvicorn = [sys.executable, "-m", "uvicorn", "plainapp:app", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen([instrument, *uvicorn], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/patients/p-9", headers={"x-user": "erin", "x-tenant": "clinic"}
                )
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert r.status_code == 200
        deadline = time.monotonic() + 30
        rows: list[dict] = []
        while not rows and time.monotonic() < deadline:
            rows = store.search(EventFilter(resource_id="p-9"), 10)
            time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(20)
    assert len(rows) == 1
    row = rows[0]
    assert (row["user_id"], row["tenant_id"], row["action"], row["resource_type"]) == (
        "erin",
        "clinic",
        "read",
        "patient",
    )
    assert row["service_name"] == "instrumented-app" and row["http_route"] == "/patients/{id}"
