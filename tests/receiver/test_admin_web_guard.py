"""Issue 13 item 7: the admin listener refuses foreign Host names (DNS rebinding), cross-origin
state changes and non-JSON bodies, in open mode and with tokens; plain API clients still work."""

from __future__ import annotations

import httpx
import pytest
from admin_seed import ADMIN, ADMIN_TOKENS
from browser_support import ARGS, CHROMIUM, needs_chromium
from conftest import start_receiver

from receiver.admin.web_guard import HostPolicy

HOLD = b'{"tenant": "acme", "reason": "csrf"}'


@pytest.fixture
def open_admin(store):
    receiver = start_receiver(store)  # no admin tokens: the open, loopback-only mode
    with httpx.Client(base_url=f"http://127.0.0.1:{receiver.admin_port}", timeout=30) as client:
        yield receiver, client
    receiver.stop_listeners()


def holds(client: httpx.Client) -> list[dict]:
    answer = client.get("/api/holds")
    assert answer.status_code == 200, answer.text
    return answer.json()["holds"]


def test_open_mode_refuses_a_cross_origin_text_plain_hold(open_admin):
    receiver, client = open_admin
    foreign = {"origin": "http://evil.example", "content-type": "text/plain"}
    answer = client.post("/api/holds", content=HOLD, headers=foreign)
    assert answer.status_code == 403 and "cross-origin" in answer.json()["error"]
    # what a browser sends for a cross-site form post when it hides the Origin
    site = {"sec-fetch-site": "cross-site", "content-type": "text/plain"}
    assert client.post("/api/holds", content=HOLD, headers=site).status_code == 403
    assert client.post("/api/holds", content=HOLD, headers={"sec-fetch-site": "same-site"}).status_code == 403
    assert client.post("/api/holds", content=HOLD, headers={"origin": "null"}).status_code == 403
    # same origin, but not JSON
    answer = client.post("/api/holds", content=HOLD, headers={"content-type": "text/plain"})
    assert answer.status_code == 415 and "application/json" in answer.json()["error"]
    assert (
        client.post(
            "/api/holds", content=HOLD, headers={"content-type": "application/x-www-form-urlencoded"}
        ).status_code
        == 415
    )
    assert client.delete("/api/holds/acme", headers={"origin": "http://evil.example"}).status_code == 403
    assert holds(client) == []

    same = {"origin": f"http://127.0.0.1:{receiver.admin_port}", "sec-fetch-site": "same-origin"}
    answer = client.post("/api/holds", content=HOLD, headers={**same, "content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert [h["tenant_id"] for h in holds(client)] == ["acme"]
    # an API client without browser headers, a JSON body with a charset, and a bodyless POST
    assert client.delete("/api/holds/acme").status_code == 200
    answer = client.post(
        "/api/holds", content=HOLD, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert answer.status_code == 200
    assert client.post("/api/retention/run", headers=same).status_code == 200


def test_foreign_host_names_are_refused_before_any_route(open_admin):
    receiver, client = open_admin
    port = receiver.admin_port
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.io", "localhost.evil.example", ""):
        for path in ("/api/events", "/api/me", "/", "/ui/app.js", "/healthz"):
            answer = client.get(path, headers={"host": host})
            assert answer.status_code == 400, (host, path)
            assert "host" in answer.json()["error"]
            assert answer.headers["x-frame-options"] == "DENY"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST.", f"[::1]:{port}", "127.0.0.2"):
        assert client.get("/api/events", headers={"host": host}).status_code == 200, host


def test_with_tokens_the_same_checks_apply(store):
    receiver = start_receiver(store, admin_tokens=ADMIN_TOKENS)
    base = f"http://127.0.0.1:{receiver.admin_port}"
    auth = {"authorization": f"Bearer {ADMIN}"}
    try:
        with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
            assert client.get("/api/me", headers={"host": "evil.example"}).status_code == 400
            assert (
                client.post("/api/export-tickets", headers={"origin": "https://evil.example"}).status_code
                == 403
            )
            assert client.post("/api/export-tickets", headers={"origin": base}).status_code == 200
            answer = client.post("/api/holds", content=HOLD, headers={"content-type": "text/plain"})
            assert answer.status_code == 415
            assert (
                client.post(
                    "/api/holds", content=HOLD, headers={"content-type": "application/json"}
                ).status_code
                == 200
            )
    finally:
        receiver.stop_listeners()


def test_configured_host_names(store):
    receiver = start_receiver(store, admin={"allowed_hosts": ["audit.example.com", "*.corp.example"]})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{receiver.admin_port}", timeout=30) as client:
            for host, status in (
                ("audit.example.com", 200),
                ("Audit.Example.com:443", 200),
                ("eu.corp.example", 200),
                ("corp.example", 400),
                ("example.com", 400),
            ):
                assert client.get("/api/me", headers={"host": host}).status_code == status, host
            # an Origin that matches the Host it came through (a TLS proxy keeping the Host)
            answer = client.post(
                "/api/holds",
                content=HOLD,
                headers={
                    "host": "audit.example.com",
                    "origin": "https://audit.example.com",
                    "content-type": "application/json",
                },
            )
            assert answer.status_code == 200, answer.text
            answer = client.post(
                "/api/holds",
                content=HOLD,
                headers={
                    "host": "audit.example.com",
                    "origin": "https://eu.corp.example",
                    "content-type": "application/json",
                },
            )
            assert answer.status_code == 403
    finally:
        receiver.stop_listeners()


def test_host_policy_defaults():
    loopback = HostPolicy.for_listen("127.0.0.1:8318")
    assert all(loopback.allows(n) for n in ("localhost", "127.0.0.1", "::1", "127.1.2.3"))
    assert not any(loopback.allows(n) for n in ("10.0.0.5", "evil.example", "localhost.evil.example"))
    wildcard = HostPolicy.for_listen("0.0.0.0:8318", ["otel-audit"])
    assert all(wildcard.allows(n) for n in ("10.0.0.5", "::1", "otel-audit", "localhost"))
    assert not wildcard.allows("evil.example")
    specific = HostPolicy.for_listen("10.0.0.5:8318")
    assert specific.allows("10.0.0.5") and not specific.allows("10.0.0.6")
    assert HostPolicy.for_listen("127.0.0.1:8318", ["*"]).allows("anything.example")


CSRF_PAGE = """<!doctype html><html><body>
<form id="f" method="POST" action="{target}" enctype="text/plain">
<input type="hidden" name='{{"tenant": "acme", "reason": "csrf", "pad": "' value='"}}'>
</form><script>document.getElementById("f").submit()</script></body></html>"""


@needs_chromium
def test_in_chromium_a_rebound_name_and_a_cross_site_form_get_nothing(open_admin):
    from playwright.sync_api import sync_playwright

    receiver, client = open_admin
    port = receiver.admin_port
    with sync_playwright() as pw:
        # evil.example resolves to 127.0.0.1, as after a DNS rebinding
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=[*ARGS, "--host-resolver-rules=MAP evil.example 127.0.0.1"]
        )
        try:
            page = browser.new_page()
            answer = page.goto(f"http://evil.example:{port}/api/events")
            assert answer is not None and answer.status == 400
            assert "events" not in answer.text()
            # a page on another site posts a text/plain form (no preflight) at the open API
            page.route(
                "http://attacker.example/**",
                lambda route: route.fulfill(
                    content_type="text/html",
                    body=CSRF_PAGE.format(target=f"http://127.0.0.1:{port}/api/holds"),
                ),
            )
            with page.expect_response(lambda r: r.url.endswith("/api/holds")) as posted:
                page.goto("http://attacker.example/")
            assert posted.value.status == 403
        finally:
            browser.close()
    assert holds(client) == []
