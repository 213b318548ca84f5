"""Rule parsing and matching, status → outcome, and the trusted-proxy walk, as plain functions."""

from __future__ import annotations

import pytest

from otel_audit.proxies import TrustedProxies, strip_port
from otel_audit.routes import SensitiveRoute, action_for_method, outcome_for_status, parse_sensitive_routes


def test_parse_sensitive_routes() -> None:
    rules = parse_sensitive_routes(
        "GET /patients/{id}=patient; DELETE,PUT /docs/{doc_id}=document:purge ;/x/*=thing"
    )
    assert [(sorted(r.methods), r.path, r.resource_type, r.action, r.id_param) for r in rules] == [
        (["GET"], "/patients/{id}", "patient", None, "id"),
        (["DELETE", "PUT"], "/docs/{doc_id}", "document", "purge", "doc_id"),
        ([], "/x/*", "thing", None, "id"),
    ]
    assert parse_sensitive_routes("") == []
    with pytest.raises(ValueError):
        parse_sensitive_routes("GET /patients/{id}")


def test_rule_matching() -> None:
    rule = SensitiveRoute(path="/t/{tenant}/patients/{id}", resource_type="patient", methods="get")
    assert rule.match("GET", "/t/acme/patients/7", None, {}) == "7"
    assert rule.match("POST", "/t/acme/patients/7", None, {}) is None
    assert rule.match("GET", "/t/acme/patients/7/notes", None, {}) is None
    # the framework's template (converters ignored) and path params win over the raw path
    assert rule.match("GET", "/mounted/t/a/patients/8", "/t/{tenant}/patients/{id:int}", {"id": 8}) == "8"
    files = SensitiveRoute(path="/files/{key:path}", resource_type="file", id_param="key")
    assert files.match("GET", "/files/a/b.txt", None, {}) == "a/b.txt"
    glob = SensitiveRoute(path="/admin/**", resource_type="admin")
    assert glob.match("POST", "/admin/users/1", None, {}) == "" and glob.action_for("POST") == "create"


def test_actions_and_outcomes() -> None:
    assert [action_for_method(m) for m in ("get", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")] == [
        "read",
        "read",
        "create",
        "update",
        "update",
        "delete",
        "execute",
    ]
    assert outcome_for_status(204) == "success" and outcome_for_status(301) == "success"
    assert outcome_for_status(401) == "denied" and outcome_for_status(403) == "denied"
    assert outcome_for_status(404) == "failure" and outcome_for_status(None) == "failure"
    assert outcome_for_status(200, raised=True) == "failure"


def test_trusted_proxies() -> None:
    proxies = TrustedProxies.parse("10.0.0.0/8, 192.168.1.1, ::1")
    assert (
        proxies.trusts("10.9.9.9")
        and proxies.trusts("192.168.1.1:8080")
        and proxies.trusts("::ffff:10.0.0.1")
    )
    assert not proxies.trusts("192.168.1.2") and not proxies.trusts("unknown")
    assert proxies.client_ip("8.8.8.8", ["1.1.1.1"]) == "8.8.8.8"
    assert proxies.client_ip("::1", ["1.1.1.1, 2.2.2.2:4711, 10.0.0.1"]) == "2.2.2.2"
    assert proxies.client_ip("::1", ["1.1.1.1", "2.2.2.2"]) == "2.2.2.2"  # repeated headers concatenate
    assert proxies.client_ip("::1", []) == "::1"
    assert proxies.client_ip(None, ["1.1.1.1"]) is None
    assert TrustedProxies().client_ip("10.0.0.1", ["1.1.1.1"]) == "10.0.0.1"
    assert strip_port("[2001:db8::1]:443") == "2001:db8::1" and strip_port("2001:db8::1") == "2001:db8::1"
