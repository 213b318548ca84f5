"""The embeddable viewer in real Chromium (Debian's, through Playwright): a vendor's page served on
another loopback port frames it with /viewer/embed.js and sees only its tenant's events (search,
detail, proof badge), with the token gone from the frame's URL; a page on an origin that is not
in ``viewer.frame_ancestors`` cannot frame it: Chromium refuses, the app never loads."""

from __future__ import annotations

import csv
import http.server
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from admin_seed import ADMIN_TOKENS, seed
from browser_support import browser, needs_chromium  # noqa: F401 - the browser fixture
from conftest import start_receiver

from receiver.viewer.tokens import ViewerTokens

SECRET = "viewer-secret-browser-0123456789abcdef-01"

pytestmark = needs_chromium


@contextmanager
def host_page() -> Iterator[tuple[str, dict[str, str]]]:
    """A vendor's web server on a free loopback port: serves ``pages[path]`` as HTML."""
    pages: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = pages.get(self.path.split("?")[0], "").encode()
            self.send_response(200 if body else 404)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", pages
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def setup(store, browser, tmp_path):  # noqa: F811 - the browser fixture
    with host_page() as (vendor, vendor_pages), host_page() as (stranger, stranger_pages):
        receiver = start_receiver(
            store,
            admin_tokens=ADMIN_TOKENS,
            viewer={"secrets": [SECRET], "frame_ancestors": [vendor], "title": "Acme audit log"},
            integrity={"checkpoint_dir": str(tmp_path / "checkpoints"), "checkpoint_interval": 0.5},
        )
        seeded = seed(f"127.0.0.1:{receiver.grpc_port}")
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        base = f"http://127.0.0.1:{receiver.admin_port}"
        yield page, base, seeded, errors, (vendor, vendor_pages), (stranger, stranger_pages)
        context.close()
        receiver.stop_listeners()


def test_vendor_page_frames_the_viewer_and_sees_only_its_tenant(setup):
    page, base, s, errors, (vendor, pages), _ = setup
    token, _ = ViewerTokens([SECRET]).mint("acme", 900)
    pages["/settings/audit"] = f"""<!doctype html><title>Vendor</title>
<h1>Your audit log</h1><div id="audit"></div>
<script src="{base}/viewer/embed.js"></script>
<script>OtelAuditViewer.mount(document.getElementById("audit"), {{ token: "{token}" }});</script>"""
    api_answers: list[dict] = []

    def keep(response) -> None:
        if "/api/events?" in response.url and response.status == 200:
            api_answers.append(response.json())

    page.on("response", keep)
    page.goto(f"{vendor}/settings/audit")
    frame = page.frame_locator("#audit iframe")
    frame.locator("#events-body tr").first.wait_for(timeout=30_000)
    table = frame.locator("#events-table").inner_text()
    assert "alice" in table and "bob" in table
    assert "gina" not in table  # globex's user
    assert frame.locator("#who-name").inner_text() == "acme"
    assert frame.locator(".brand").inner_text() == "Acme audit log"
    # no admin features, no tenant picker, no tenant column, no export without the flag
    for selector in ("#nav", "#sign-out", "#f-tenant", "#export-csv", "#views"):
        assert not frame.locator(selector).is_visible(), selector
    assert not frame.locator("#events-table th", has_text="Tenant").is_visible()
    assert api_answers and all(e["tenant_id"] == "acme" for a in api_answers for e in a["events"])
    (viewer_frame,) = [f for f in page.frames if f.url.startswith(f"{base}/viewer")]
    assert "token" not in viewer_frame.url  # taken out of the URL at once
    assert viewer_frame.evaluate("sessionStorage.length + localStorage.length") == 0
    # a search, then the detail of one event with its proof badge checked in the browser
    frame.locator("#f-user").fill("alice")
    frame.locator("#search-button").click()
    frame.locator("#results-summary", has_text="2 events").wait_for(timeout=30_000)
    frame.locator("#events-body a").first.click()
    frame.locator("#detail-title").wait_for(timeout=30_000)
    assert frame.locator("#detail-subtitle").inner_text().startswith("alice")
    assert "Trace id" not in frame.locator("#detail-fields").inner_text()  # hidden field
    badge = frame.locator("#proof-badge")
    badge.filter(has_text="In the signed log").wait_for(timeout=30_000)
    assert viewer_frame.url.startswith(f"{base}/viewer/events/")
    assert errors == []


def test_export_button_only_with_the_flag(setup):
    page, base, _, errors, (vendor, pages), _ = setup
    token, _ = ViewerTokens([SECRET]).mint("acme", 900, actor="alice", can_export=True)
    pages["/export"] = (
        f'<!doctype html><iframe id="v" style="width:100%;height:800px" src="{base}/viewer#token={token}"></iframe>'
    )
    page.goto(f"{vendor}/export")
    frame = page.frame_locator("#v")
    frame.locator("#events-body tr").first.wait_for(timeout=30_000)
    assert frame.locator("#export-csv").is_visible()
    assert frame.locator("#who-name").inner_text() == "acme · alice"
    users = set(frame.locator("#events-body tr td:nth-child(3)").all_inner_texts())
    assert users == {"alice"}
    with page.expect_download(timeout=30_000) as download:
        frame.locator("#export-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows and {(r["tenant_id"], r["user_id"]) for r in rows} == {("acme", "alice")}
    assert errors == []


def test_other_origin_cannot_frame_it(setup):
    page, base, _, _, _, (stranger, pages) = setup
    token, _ = ViewerTokens([SECRET]).mint("acme", 900)
    pages["/evil"] = f'<!doctype html><iframe id="v" src="{base}/viewer#token={token}"></iframe>'
    api_calls: list[str] = []
    page.on("request", lambda r: api_calls.append(r.url) if "/api/" in r.url else None)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "frame-ancestors" in m.text else None)
    page.goto(f"{stranger}/evil")
    page.wait_for_timeout(3000)
    (child,) = page.main_frame.child_frames
    assert child.url != f"{base}/viewer" and not child.url.startswith(f"{base}/viewer")
    assert child.evaluate("document.getElementById('events-body')") is None
    assert api_calls == []  # the app never ran
    assert refused, "Chromium reports the frame-ancestors refusal"


def test_default_config_forbids_every_framing(store, browser):  # noqa: F811 - the browser fixture
    with host_page() as (vendor, pages):
        receiver = start_receiver(store, admin_tokens=ADMIN_TOKENS, viewer={"secrets": [SECRET]})
        context = browser.new_context()
        try:
            token, _ = ViewerTokens([SECRET]).mint("acme", 900)
            base = f"http://127.0.0.1:{receiver.admin_port}"
            pages["/"] = f'<!doctype html><iframe id="v" src="{base}/viewer#token={token}"></iframe>'
            page = context.new_page()
            api_calls: list[str] = []
            page.on("request", lambda r: api_calls.append(r.url) if "/api/" in r.url else None)
            page.goto(f"{vendor}/")
            page.wait_for_timeout(3000)
            (child,) = page.main_frame.child_frames
            assert child.evaluate("document.getElementById('events-body')") is None
            assert api_calls == []
        finally:
            context.close()
            receiver.stop_listeners()


def test_vendor_example_embeds_the_signed_in_customers_log(store, browser):  # noqa: F811 - the browser fixture
    """examples/vendor_viewer: its FastAPI backend mints through POST /api/viewer-tokens, its page
    mounts the viewer with embed.js; the customer (cookie tenant=globex) sees globex's events."""
    import importlib.util
    import time

    import uvicorn
    from conftest import REPO

    receiver = start_receiver(
        store,
        admin_tokens=ADMIN_TOKENS,
        viewer={"secrets": [SECRET], "frame_ancestors": ["http://127.0.0.1:*"]},
    )
    seed(f"127.0.0.1:{receiver.grpc_port}")
    spec = importlib.util.spec_from_file_location("vendor_example", REPO / "examples/vendor_viewer/app.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.AUDIT_URL = f"http://127.0.0.1:{receiver.admin_port}"
    example.ADMIN_TOKEN = next(t["token"] for t in ADMIN_TOKENS if t["role"] == "admin")
    server = uvicorn.Server(uvicorn.Config(example.app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    context = browser.new_context()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        context.add_cookies([{"name": "tenant", "value": "globex", "url": f"http://127.0.0.1:{port}"}])
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        frame = page.frame_locator("#audit-log iframe")
        frame.locator("#events-body tr").first.wait_for(timeout=30_000)
        assert frame.locator("#who-name").inner_text() == "globex"
        users = set(frame.locator("#events-body tr td:nth-child(3)").all_inner_texts())
        assert users == {"gina", "alice"}
        assert frame.locator("#export-csv").is_visible()
    finally:
        context.close()
        server.should_exit = True
        thread.join(10)
        receiver.stop_listeners()
