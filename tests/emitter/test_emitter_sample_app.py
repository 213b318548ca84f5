"""The demo documents app emits the expected audit events; the traffic summary matches them."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from emitter_support import (
    Captured,
    call,
    captured_fixture,  # noqa: F401  (the `captured` fixture)
)

from otel_audit import attributes as attr
from receiver.demo.sample_app import build_app
from receiver.demo.traffic import run_traffic


def _as(user: str | None, tenant: str = "acme") -> dict[str, str]:
    headers = {"x-demo-tenant": tenant}
    if user:
        headers["x-demo-user"] = user
    return headers


def _events(captured: Captured) -> list[tuple[str, str, str, str, str]]:
    out = []
    for rec in captured.records():
        a = dict(rec.attributes)
        out.append(
            (rec.event_name, a[attr.OUTCOME], a[attr.USER_ID], a.get(attr.TENANT_ID, ""), a[attr.RESOURCE_ID])
        )
    return out


def test_routes_emit_the_expected_events(captured: Captured) -> None:
    app = build_app(logger_provider=captured.provider)
    login = call(
        app, "POST", "/login", headers=_as(None), json={"username": "alice", "password": "wonderland"}
    )
    assert login.status_code == 200
    session = login.json()["session"]
    assert (
        call(
            app, "POST", "/login", headers=_as(None), json={"username": "alice", "password": "nope"}
        ).status_code
        == 401
    )
    call(app, "POST", "/login", headers=_as(None), json={"username": "mallory", "password": "x"})
    call(
        app,
        "POST",
        "/login",
        headers=_as(None, "globex"),
        json={"username": "alice", "password": "wonderland"},
    )
    assert call(app, "GET", "/documents/1", headers=_as("dave")).status_code == 200
    assert call(app, "GET", "/documents/3", headers=_as("dave")).status_code == 403  # confidential
    assert call(app, "GET", "/documents/404", headers=_as("alice")).status_code == 404
    assert call(app, "GET", "/documents/1", headers=_as(None)).status_code == 401
    put = call(
        app,
        "PUT",
        "/documents/2",
        headers={**_as("alice"), "x-demo-session": session},
        json={"title": "T", "subject": {"ssn": "999-99-9999"}},
    )
    assert put.status_code == 200
    assert call(app, "PUT", "/documents/2", headers=_as("dave"), json={"title": "X"}).status_code == 403
    assert call(app, "DELETE", "/documents/2", headers=_as("alice")).status_code == 403
    assert call(app, "DELETE", "/documents/2", headers=_as("carol")).status_code == 204
    assert (
        call(app, "POST", "/roles/dave/grant", headers=_as("carol"), json={"role": "editor"}).status_code
        == 200
    )
    assert (
        call(app, "POST", "/roles/dave/revoke", headers=_as("dave"), json={"role": "editor"}).status_code
        == 403
    )
    assert call(app, "POST", "/documents", headers=_as("alice"), json={"title": "memo"}).status_code == 201
    assert (
        call(app, "POST", "/logout", headers={**_as("alice"), "x-demo-session": session}).status_code == 204
    )
    assert call(app, "GET", "/healthz").status_code == 200  # not audited

    assert _events(captured) == [
        ("audit.user.login", "success", "alice", "acme", "alice"),
        ("audit.user.login", "failure", "alice", "acme", "alice"),
        ("audit.user.login", "failure", "", "acme", ""),
        ("audit.user.login", "denied", "alice", "globex", "alice"),
        ("audit.document.read", "success", "dave", "acme", "1"),
        ("audit.document.read", "denied", "dave", "acme", "3"),
        ("audit.document.read", "failure", "alice", "acme", "404"),
        ("audit.document.read", "denied", "", "acme", "1"),
        ("audit.document.update", "success", "alice", "acme", "2"),
        ("audit.document.update", "denied", "dave", "acme", "2"),
        ("audit.document.delete", "denied", "alice", "acme", "2"),
        ("audit.document.delete", "success", "carol", "acme", "2"),
        ("audit.role.grant", "success", "carol", "acme", "editor"),
        ("audit.role.revoke", "denied", "dave", "acme", "editor"),
        ("audit.document.create", "success", "alice", "acme", "100"),
        ("audit.user.logout", "success", "alice", "acme", "alice"),
    ]
    recs = captured.records()
    assert recs[1].body == "bad password"
    update = dict(recs[8].attributes)
    changes = json.loads(update[attr.CHANGES])
    assert changes["subject.ssn"] == {"old": "[REDACTED]", "new": "[REDACTED]"}
    assert changes["title"] == {"old": "acme document 2", "new": "T"}
    assert "999-99-9999" not in update[attr.CHANGES]
    assert update[attr.SESSION_ID] == session and update[attr.HTTP_ROUTE] == "/documents/{id}"
    deleted = json.loads(dict(recs[11].attributes)[attr.CHANGES])
    assert deleted["subject.ssn"]["old"] == "[REDACTED]" and deleted["version"] == {"old": 2, "new": None}
    grant = dict(recs[12].attributes)
    assert (grant[attr.PERMISSION], grant[attr.GRANTEE]) == ("documents:write", "dave")
    assert dict(recs[4].attributes)[attr.HTTP_STATUS] == 200


def test_traffic_summary_matches_emitted_events(captured: Captured) -> None:
    app = build_app(logger_provider=captured.provider)
    summary: dict[str, Any] = run_traffic(app, n_rounds=2, seed=7)
    emitted = Counter(
        (dict(r.attributes)[attr.ACTION], dict(r.attributes)[attr.OUTCOME]) for r in captured.records()
    )
    expected = Counter(
        {(a, o): n for a, outcomes in summary["by_action"].items() for o, n in outcomes.items()}
    )
    assert emitted == expected
    assert summary["events"] == len(captured.records()) > 40
    tenants = Counter(dict(r.attributes)[attr.TENANT_ID] for r in captured.records())
    assert tenants == Counter(summary["by_tenant"]) and set(tenants) == {"acme", "globex"}
    assert {"login", "logout", "read", "update", "create", "delete", "grant", "revoke"} <= set(
        summary["by_action"]
    )
