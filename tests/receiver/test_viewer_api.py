"""Tenant-facing viewer tokens (SPEC section 9) against a real receiver over real OTLP/gRPC and
chDB: minting (who may, for which tenant, the answer), the scope on every route a viewer may
use (tenant, actor, export flag, hidden fields), 401 for expired / tampered / foreign / revoked
tokens, 403 everywhere else, and the audit trail of mints and uses."""

from __future__ import annotations

import base64
import csv
import io
import json
import time

import httpx
import pyarrow.parquet as pq
import pytest
from admin_seed import ACME_AUDITOR, ADMIN, ADMIN_TOKENS, seed
from conftest import start_receiver

from receiver.filters import EventFilter
from receiver.viewer.tokens import ViewerTokens

SECRET = "viewer-secret-0123456789abcdef-0123456789"
OLD_SECRET = "viewer-secret-old-0123456789abcdef-012345"
ACME_ADMIN = "admin-token-acme-only-0123456789"
TOKENS = [*ADMIN_TOKENS, {"token": ACME_ADMIN, "role": "admin", "tenants": ["acme"], "name": "acme.admin"}]
#: routes a viewer token never uses (SPEC section 9: 403)
OTHER_ROUTES = (
    ("GET", "/api/me"),
    ("GET", "/api/tenants"),
    ("GET", "/api/compliance?tenant=acme"),
    ("GET", "/api/verify?tenant=acme"),
    ("GET", "/api/checkpoints?tenant=acme"),
    ("GET", "/api/consistency?origin=otel-audit/acme/x&from=1&to=2"),
    ("GET", "/api/alerts"),
    ("GET", "/api/streams"),
    ("GET", "/api/holds"),
    ("POST", "/api/holds"),
    ("GET", "/api/retention/status"),
    ("POST", "/api/retention/run"),
    ("POST", "/api/viewer-tokens"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("GET", "/api/no-such-route"),
)


@pytest.fixture
def env(store, tmp_path):
    receiver = start_receiver(
        store,
        admin_tokens=TOKENS,
        viewer={"secrets": [SECRET, OLD_SECRET], "frame_ancestors": ["http://127.0.0.1:9"]},
        integrity={"checkpoint_dir": str(tmp_path / "checkpoints")},
    )
    seeded = seed(f"127.0.0.1:{receiver.grpc_port}")
    base = f"http://127.0.0.1:{receiver.admin_port}"
    admin = httpx.Client(base_url=base, headers={"authorization": f"Bearer {ADMIN}"}, timeout=30)
    yield receiver, seeded, admin, base
    admin.close()
    receiver.stop_listeners()


def mint(admin: httpx.Client, **body: object) -> str:
    answer = admin.post("/api/viewer-tokens", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def viewer(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=30)


def data_rows(client: httpx.Client, **params: str | list[str]) -> list[dict]:
    answer = client.get("/api/events", params={"limit": "1000", "event_name": "!audit.audit_log.*", **params})
    assert answer.status_code == 200, answer.text
    return answer.json()["events"]


def test_mint_answer_and_url(env):
    _, _, admin, base = env
    answer = admin.post("/api/viewer-tokens", json={"tenant": "acme", "ttl_seconds": 600})
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert set(doc) == {"token", "expires_at", "url"}
    assert doc["url"] == f"{base}/viewer#token={doc['token']}"
    claims = ViewerTokens([SECRET]).verify(doc["token"])
    assert claims.tenant == "acme" and claims.actor is None and claims.can_export is False
    assert claims.expires_at - claims.issued_at == 600
    assert answer.headers["cache-control"] == "no-store"


def test_who_may_mint_and_bad_bodies(env):
    _, _, admin, base = env
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {ACME_AUDITOR}"}) as auditor:
        assert auditor.post("/api/viewer-tokens", json={"tenant": "acme"}).status_code == 403
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {ACME_ADMIN}"}) as acme_admin:
        assert acme_admin.post("/api/viewer-tokens", json={"tenant": "acme"}).status_code == 200
        refused = acme_admin.post("/api/viewer-tokens", json={"tenant": "globex"})
        assert refused.status_code == 403 and "globex" in refused.json()["error"]
    assert httpx.post(f"{base}/api/viewer-tokens", json={"tenant": "acme"}).status_code == 401
    for body in (
        {"tenant": "acme", "ttl_seconds": 86401},
        {"tenant": "acme", "ttl_seconds": 0},
        {"tenant": ""},
        {},
        {"tenant": "acme", "can_export": "yes"},
        {"tenant": "acme", "actor": "ali*"},
        {"tenant": "acme", "role": "admin"},
        ["acme"],
    ):
        bad = admin.post("/api/viewer-tokens", json=body)
        assert bad.status_code == 400, (body, bad.text)
        assert bad.json()["error"]
    assert admin.post("/api/viewer-tokens", json={"tenant": "acme", "ttl_seconds": 86400}).status_code == 200


def test_tenant_scope_on_every_route(env):
    receiver, s, admin, base = env
    token = mint(admin, tenant="acme")
    with viewer(base, token) as v:
        rows = data_rows(v)
        assert {r["tenant_id"] for r in rows} == {"acme"} and len(rows) == s.acme_count
        assert v.get("/api/events", params={"tenant": "globex"}).status_code == 403
        assert v.get("/api/events", params={"tenant": ["acme", "globex"]}).status_code == 403
        assert {r["tenant_id"] for r in data_rows(v, tenant="!acme")} == set()
        assert v.get(f"/api/events/{s.ids['login']}").status_code == 200
        assert v.get(f"/api/events/{s.ids['globex_read']}").status_code == 404
        assert v.get(f"/api/events/{s.ids['globex_read']}/proof").status_code == 404
        assert v.get(f"/api/events/{s.ids['login']}/proof").status_code in (200, 404, 409)  # proof may lag
        stats = v.get("/api/stats", params={"event_name": "!audit.audit_log.*"})
        assert stats.status_code == 200 and stats.json()["total"] == s.acme_count
        assert v.get("/api/stats", params={"tenant": "globex"}).status_code == 403
        # no export without can_export: neither the direct route nor a download ticket
        assert v.get("/api/export.csv").status_code == 403
        assert v.get("/api/export.jsonl").status_code == 403
        assert v.post("/api/export-tickets").status_code == 403


def test_actor_scope_is_forced(env):
    _, s, admin, base = env
    token = mint(admin, tenant="acme", actor="alice", can_export=True)
    with viewer(base, token) as v:
        rows = data_rows(v)
        assert {r["id"] for r in rows} == {s.ids["login"], s.ids["logout"]}
        assert data_rows(v, user="bob") == []
        assert data_rows(v, user="!alice") == []
        assert {r["id"] for r in data_rows(v, user="ali*")} == {s.ids["login"], s.ids["logout"]}
        assert {r["id"] for r in data_rows(v, user=["bob", "alice"])} == {s.ids["login"], s.ids["logout"]}
        assert v.get(f"/api/events/{s.ids['update']}").status_code == 404  # bob's
        assert v.get(f"/api/events/{s.ids['update']}/proof").status_code == 404
        assert v.get(f"/api/events/{s.ids['globex_delete']}").status_code == 404  # alice, other tenant
        assert v.get("/api/stats", params={"event_name": "!audit.audit_log.*"}).json()["total"] == 2
        exported = v.get(
            "/api/export.csv", params={"event_name": "!audit.audit_log.*", "user": ["bob", "alice"]}
        )
        assert exported.status_code == 200, exported.text
        lines = list(csv.DictReader(io.StringIO(exported.text)))
        assert {(r["tenant_id"], r["user_id"]) for r in lines} == {("acme", "alice")} and len(lines) == 2


def test_export_flag_allows_export_and_tickets(env):
    _, s, admin, base = env
    token = mint(admin, tenant="acme", can_export=True)
    with viewer(base, token) as v:
        direct = v.get("/api/export.jsonl", params={"event_name": "!audit.audit_log.*"})
        assert direct.status_code == 200
        tenants = {json.loads(line)["tenant_id"] for line in direct.text.splitlines()}
        assert tenants == {"acme"}
        ticket = v.post("/api/export-tickets").json()["ticket"]
        with_ticket = httpx.get(f"{base}/api/export.csv", params={"ticket": ticket, "tenant": "globex"})
        assert with_ticket.status_code == 403  # the ticket carries the viewer's scope
        ticket = v.post("/api/export-tickets").json()["ticket"]
        ok = httpx.get(
            f"{base}/api/export.csv", params={"ticket": ticket, "event_name": "!audit.audit_log.*"}
        )
        assert ok.status_code == 200
        assert {r["tenant_id"] for r in csv.DictReader(io.StringIO(ok.text))} == {"acme"}


def test_hidden_fields_are_left_out(env):
    _, s, admin, base = env
    with viewer(base, mint(admin, tenant="acme")) as v:
        row = data_rows(v)[0]
        detail = v.get(f"/api/events/{s.ids['login']}").json()
    for doc in (row, detail):
        assert "service_name" not in doc and "trace_id" not in doc and "span_id" not in doc
        assert "received_at" not in doc
        assert not any(k.startswith("otel_audit.") for k in doc["attributes"])
        assert doc["user_id"] and doc["action"]
    full = admin.get(f"/api/events/{s.ids['login']}").json()
    assert full["service_name"] == "billing" and full["trace_id"]


def test_other_routes_are_403(env):
    _, _, admin, base = env
    for token in (mint(admin, tenant="acme"), mint(admin, tenant="acme", can_export=True, actor="alice")):
        with viewer(base, token) as v:
            for method, path in OTHER_ROUTES:
                answer = v.request(method, path, json={} if method == "POST" else None)
                assert answer.status_code == 403, (method, path, answer.text)
                assert "viewer token" in answer.json()["error"]


def forge(token: str, **changes: object) -> str:
    prefix, body, mac = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims.update(changes)
    raw = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{prefix}.{raw}.{mac}"


def test_bad_tokens_are_401_with_a_reason(env):
    _, _, admin, base = env
    good = mint(admin, tenant="acme")
    expired, _ = ViewerTokens([SECRET]).mint("acme", 60, now=time.time() - 3600)
    foreign, _ = ViewerTokens(["another-config-secret-0123456789abcdef"]).mint("acme", 600)
    old_key, _ = ViewerTokens([OLD_SECRET]).mint("acme", 600)
    cases = {
        "expired": expired,
        "bad signature": forge(good, ten="globex"),
        "bad signature ": forge(good, exp=int(time.time()) + 86400 * 365),
        "bad signature  ": foreign,
        "malformed": good + ".x",
        "malformed ": "oav1.",
    }
    for reason, token in cases.items():
        with viewer(base, token) as v:
            for path in ("/api/events", "/api/me", "/api/export.csv"):
                answer = v.get(path)
                assert answer.status_code == 401, (reason, path, answer.text)
                assert reason.strip() in answer.json()["error"]
    with viewer(base, old_key) as v:  # rotation: a secret further down the list still verifies
        assert v.get("/api/events").status_code == 200


def test_revocation_and_no_secrets(store, tmp_path):
    revoked_at = "2030-01-01T00:00:00Z"
    receiver = start_receiver(
        store, admin_tokens=ADMIN_TOKENS, viewer={"secrets": [SECRET], "not_before": {"acme": revoked_at}}
    )
    off = start_receiver(store, admin_tokens=ADMIN_TOKENS)
    try:
        acme, _ = ViewerTokens([SECRET]).mint("acme", 600)
        globex, _ = ViewerTokens([SECRET]).mint("globex", 600)
        later, _ = ViewerTokens([SECRET]).mint("acme", 600, now=1_893_456_000 + 5)  # after the cut-off
        base = f"http://127.0.0.1:{receiver.admin_port}"
        with viewer(base, acme) as v:
            answer = v.get("/api/events")
            assert answer.status_code == 401 and "revoked" in answer.json()["error"]
        with viewer(base, globex) as v:
            assert v.get("/api/events").status_code == 200
        assert ViewerTokens(
            [SECRET], {"acme": __import__("datetime").datetime.fromisoformat(revoked_at)}
        ).verify(later, now=1_893_456_010)
        off_base = f"http://127.0.0.1:{off.admin_port}"
        with viewer(off_base, globex) as v:
            assert v.get("/api/events").status_code == 401
        with httpx.Client(base_url=off_base, headers={"authorization": f"Bearer {ADMIN}"}) as a:
            refused = a.post("/api/viewer-tokens", json={"tenant": "acme"})
            assert refused.status_code == 409 and "viewer.secrets" in refused.json()["error"]
    finally:
        off.stop_listeners()
        receiver.stop_listeners()


def test_open_mode_viewer_token_is_still_a_viewer(store):
    """With no admin tokens the API is open on loopback: a viewer token must not become admin."""
    receiver = start_receiver(store, viewer={"secrets": [SECRET]})
    try:
        seed(f"127.0.0.1:{receiver.grpc_port}")
        token, _ = ViewerTokens([SECRET]).mint("globex", 600)
        with viewer(f"http://127.0.0.1:{receiver.admin_port}", token) as v:
            assert v.get("/api/me").status_code == 403
            assert {r["tenant_id"] for r in data_rows(v)} == {"globex"}
    finally:
        receiver.stop_listeners()


def test_mint_and_use_are_audited(env, store):
    _, s, admin, base = env
    minted = admin.post("/api/viewer-tokens", json={"tenant": "acme", "actor": "alice", "can_export": True})
    token_id = ViewerTokens([SECRET]).verify(minted.json()["token"]).token_id
    (grant,) = store.search(EventFilter(tenant="acme", action="grant", resource_type="audit_log"), 10)
    assert grant["user_id"] == "root.admin" and grant["resource_id"] == f"viewer-token:{token_id}"
    assert grant["event_name"] == "audit.audit_log.read"
    assert grant["attributes"]["audit.viewer.token_id"] == token_id
    assert grant["attributes"]["audit.viewer.actor"] == "alice"
    with viewer(base, minted.json()["token"]) as v:
        assert v.get(f"/api/events/{s.ids['login']}").status_code == 200
        assert v.get("/api/events").status_code == 200
    reads = store.search(
        EventFilter(tenant="acme", event_name="audit.audit_log.read", user="viewer:alice"), 10
    )
    assert {r["resource_id"] for r in reads} == {s.ids["login"], "audit_events"}
    for r in reads:
        assert r["attributes"]["audit.viewer.token_id"] == token_id
        assert r["attributes"]["audit.admin.role"] == "viewer"
    # another token for the same user: its first search is recorded too (not folded into the first's)
    second = mint(admin, tenant="acme", actor="alice")
    with viewer(base, second) as v:
        assert v.get("/api/events").status_code == 200
    searches = store.search(EventFilter(tenant="acme", user="viewer:alice", resource_id="audit_events"), 10)
    assert len({r["attributes"]["audit.viewer.token_id"] for r in searches}) == 2


def test_configured_hidden_fields_leave_events_and_facets(store):
    receiver = start_receiver(
        store,
        admin_tokens=ADMIN_TOKENS,
        viewer={"secrets": [SECRET], "hidden_fields": ["ip_address", "user_agent"]},
    )
    try:
        seed(f"127.0.0.1:{receiver.grpc_port}")
        token, _ = ViewerTokens([SECRET]).mint("acme", 600)
        with viewer(f"http://127.0.0.1:{receiver.admin_port}", token) as v:
            rows = data_rows(v)
            assert rows and all("ip_address" not in r and "user_agent" not in r for r in rows)
            assert all("service_name" in r for r in rows)  # not in this config's list
            facets = v.get("/api/stats").json()["facets"]
            assert "ip_address" not in facets and "user_id" in facets
    finally:
        receiver.stop_listeners()


def test_viewer_page_headers(env):
    _, _, admin, base = env
    page = httpx.get(f"{base}/viewer")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors http://127.0.0.1:9" in csp and "script-src 'self'" in csp
    assert "x-frame-options" not in page.headers
    assert page.headers["referrer-policy"] == "no-referrer"
    assert 'data-mode="viewer"' in page.text
    admin_page = httpx.get(f"{base}/")
    assert "frame-ancestors 'none'" in admin_page.headers["content-security-policy"]
    assert admin_page.headers["x-frame-options"] == "DENY"
    embed = httpx.get(f"{base}/viewer/embed.js")
    assert embed.status_code == 200 and embed.headers["content-type"].startswith("text/javascript")


def test_viewer_page_default_forbids_framing_and_theming_is_escaped(store):
    receiver = start_receiver(
        store,
        viewer={
            "secrets": [SECRET],
            "title": 'Acme "audit" <log>',
            "accent_color": "#0a7",
            "logo_url": "https://cdn.example.com/l.png",
        },
    )
    try:
        base = f"http://127.0.0.1:{receiver.admin_port}"
        page = httpx.get(f"{base}/viewer")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "img-src 'self' data: https://cdn.example.com;" in page.headers["content-security-policy"]
        assert "<title>Acme &quot;audit&quot; &lt;log&gt;</title>" in page.text
        assert 'data-title="Acme &quot;audit&quot; &lt;log&gt;"' in page.text
        assert "--brand: #0a7;" in httpx.get(f"{base}/viewer/theme.css").text
    finally:
        receiver.stop_listeners()


@pytest.mark.parametrize(
    "viewer_config",
    [
        {"accent_color": "red;} body{display:none"},
        {"accent_color": "#12345"},
        {"logo_url": "javascript:alert(1)"},
        {"logo_url": "http://evil.example/x.png"},
        {"logo_url": "https://x.example/a'onerror"},
        {"frame_ancestors": ["https://a.example; script-src *"]},
        {"frame_ancestors": ["*"]},
        {"secrets": ["short"]},
        {"hidden_fields": ["tenant_id"]},
    ],
)
def test_config_refuses_injection(viewer_config):
    from receiver.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="viewer"):
        load_config(None, viewer=viewer_config)


def test_search_cannot_reveal_hidden_fields(store):
    """A viewer's free-text search skips hidden attributes (by key and by prefix) and a filter on
    a hidden column is refused: neither may answer "which events hold this hidden value"."""
    from otlp_builders import audit_attrs, export, log_record, request

    receiver = start_receiver(
        store,
        admin_tokens=ADMIN_TOKENS,
        viewer={
            "secrets": [SECRET],
            "hidden_fields": ["ip_address", "attributes.note", "attributes.internal.*"],
        },
    )
    try:
        attrs = audit_attrs(
            client__address="203.0.113.77",
            note="needle-note",
            internal__flag="needle-internal",
            ticket="needle-shown",
        )
        assert not export(f"127.0.0.1:{receiver.grpc_port}", request([log_record(attrs)])).HasField(
            "partial_success"
        )
        base = f"http://127.0.0.1:{receiver.admin_port}"
        token, _ = ViewerTokens([SECRET]).mint("acme", 600, can_export=True)
        with (
            viewer(base, token) as v,
            httpx.Client(base_url=base, headers={"authorization": f"Bearer {ADMIN}"}, timeout=30) as admin,
        ):
            deadline = time.monotonic() + 30
            while not data_rows(admin, q="needle-note") and time.monotonic() < deadline:
                time.sleep(0.2)
            for hidden in ("needle-note", "needle-internal"):
                assert len(data_rows(admin, q=hidden)) == 1
                assert data_rows(v, q=hidden) == []
                stats = v.get("/api/stats", params={"q": hidden, "event_name": "!audit.audit_log.*"})
                assert stats.json()["total"] == 0
            shown = data_rows(v, q="needle-shown")
            assert len(shown) == 1 and shown[0]["attributes"] == {"ticket": "needle-shown"}
            refused = v.get("/api/events", params={"ip": "203.0.113.77"})
            assert refused.status_code == 400 and "hidden" in refused.json()["error"]
            assert len(data_rows(admin, ip="203.0.113.77")) == 1
            # exports: SPEC 5's CSV columns stay, a hidden one empty; JSON lines and Parquet leave it out
            only = {"q": "needle-shown", "event_name": "!audit.audit_log.*"}
            (line,) = csv.DictReader(io.StringIO(v.get("/api/export.csv", params=only).text))
            assert line["ip_address"] == "" and line["user_id"] == "alice"
            (admin_line,) = csv.DictReader(io.StringIO(admin.get("/api/export.csv", params=only).text))
            assert admin_line["ip_address"] == "203.0.113.77"
            (event,) = [json.loads(x) for x in v.get("/api/export.jsonl", params=only).text.splitlines()]
            assert "ip_address" not in event and event["attributes"] == {"ticket": "needle-shown"}
            table = pq.read_table(io.BytesIO(v.get("/api/export.parquet", params=only).content))
            assert "ip_address" not in table.column_names
            assert table.column("attributes").to_pylist() == [[("ticket", "needle-shown")]]
    finally:
        receiver.stop_listeners()
