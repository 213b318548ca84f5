"""otel_audit.wsgi.AuditMiddleware on a real Flask app: its test client and a real WSGI server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from emitter_support import Captured, captured_fixture  # noqa: F401
from flask import Flask, abort

import otel_audit
from otel_audit.wsgi import AuditMiddleware, header_resolver


def make_app(**options: Any) -> Flask:
    app = Flask(__name__)

    @app.get("/documents/<doc_id>")
    def show(doc_id: str) -> dict[str, str]:
        otel_audit.record(action="export", resource_type="report", resource_id=doc_id)
        return {"id": doc_id}

    @app.delete("/documents/<int:doc_id>")
    def remove(doc_id: int) -> tuple[str, int]:
        if doc_id == 403:
            abort(403)
        return "", 204

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("broken")

    app.wsgi_app = AuditMiddleware(app.wsgi_app, **options)  # type: ignore[method-assign]
    return app


OPTIONS: dict[str, Any] = {
    "user_resolver": header_resolver("X-User"),
    "tenant_resolver": lambda environ: "acme",
    "trusted_proxies": ["127.0.0.0/8"],
    "sensitive": [
        otel_audit.SensitiveRoute(
            path="/documents/{doc_id}", resource_type="document", methods={"GET", "DELETE"}
        ),
        "GET /boom=system:execute",
    ],
}


def by_type(captured: Captured) -> dict[str, dict[str, Any]]:
    return {a["audit.resource.type"]: a for a in captured.attrs()}


def test_flask_test_client_context_and_sensitive_route(captured):
    client = make_app(**OPTIONS).test_client()
    response = client.get(
        "/documents/d-7",
        headers={"X-User": "dave", "User-Agent": "ua/1", "X-Forwarded-For": "203.0.113.50"},
    )
    assert response.status_code == 200
    events = by_type(captured)
    assert set(events) == {"report", "document"}
    handler_event, route_event = events["report"], events["document"]
    for event in (handler_event, route_event):
        assert event["enduser.id"] == "dave" and event["audit.tenant.id"] == "acme"
        assert event["client.address"] == "203.0.113.50" and event["user_agent.original"] == "ua/1"
        assert event["http.request.method"] == "GET" and event["http.route"] == "/documents/{doc_id}"
    assert (route_event["audit.action"], route_event["audit.resource.id"]) == ("read", "d-7")
    assert route_event["http.response.status_code"] == 200 and route_event["audit.outcome"] == "success"


def test_flask_outcomes_denied_and_failure(captured):
    app = make_app(**OPTIONS)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    client = app.test_client()
    assert client.delete("/documents/403", headers={"X-User": "eve"}).status_code == 403
    with pytest.raises(RuntimeError):
        client.get("/boom")
    assert client.get("/elsewhere").status_code == 404  # no rule: no event
    denied, failed = captured.attrs()
    assert (denied["audit.action"], denied["audit.outcome"], denied["audit.resource.id"]) == (
        "delete",
        "denied",
        "403",
    )
    assert denied["http.route"] == "/documents/{doc_id}"
    assert (failed["audit.resource.type"], failed["audit.outcome"]) == ("system", "failure")
    assert failed["http.response.status_code"] == 500
    assert captured.records()[1].body == "unhandled RuntimeError"


def test_untrusted_peer_forwarded_header_is_ignored(captured):
    client = make_app(**{**OPTIONS, "trusted_proxies": ["10.0.0.0/8"]}).test_client()
    client.get("/documents/x", headers={"X-Forwarded-For": "203.0.113.50"})
    assert {a["client.address"] for a in captured.attrs()} == {"127.0.0.1"}


@pytest.fixture
def served() -> Iterator[str]:
    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, make_app(**OPTIONS), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_through_a_real_wsgi_server(captured, served):
    with httpx.Client(base_url=served, timeout=30) as http:
        assert http.get("/documents/d-1", headers={"X-User": "fay"}).status_code == 200
        assert http.delete("/documents/5", headers={"X-User": "fay"}).status_code == 204
    events = captured.attrs()
    routes = sorted(
        (a["audit.action"], a["audit.resource.id"], a.get("http.response.status_code")) for a in events
    )
    assert routes == [("delete", "5", 204), ("export", "d-1", None), ("read", "d-1", 200)]
    assert all(a["enduser.id"] == "fay" and a["client.address"] == "127.0.0.1" for a in events)
