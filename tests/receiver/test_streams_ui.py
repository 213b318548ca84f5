"""The admin UI's Streams page (issue 18) in real Chromium against a real receiver delivering to
real loopback destinations: each stream's kind, destination, tenants, positions, lag, backlog
state, deliveries, failures and last error; admin role only; secrets never on the page."""

from __future__ import annotations

import re

import pytest
from admin_seed import ACME_AUDITOR, ADMIN, ADMIN_TOKENS
from browser_support import browser, needs_chromium, sign_in  # noqa: F401 - the browser fixture
from conftest import start_receiver
from stream_support import HttpCollector, send_events, wait_for

pytestmark = needs_chromium

SECRET = "hmac-secret-never-on-the-page"
HEADER = "Bearer header-token-never-on-the-page"
FAST = {"poll_seconds": 0.1, "batch_seconds": 0, "retry_initial_seconds": 0.2, "retry_max_seconds": 0.5}


@pytest.fixture
def streaming(store):
    up, down = HttpCollector(), HttpCollector()
    down.down = True
    streams = [
        {
            "name": "siem",
            "kind": "webhook",
            "url": up.base + "/in",
            "secret": SECRET,
            "batch_size": 2,
            **FAST,
        },
        {
            "name": "partner",
            "kind": "webhook",
            "url": down.base + "/hook",
            "tenants": ["acme"],
            "headers": {"authorization": HEADER},
            "backlog_limit": 2,
            **FAST,
        },
    ]
    receiver = start_receiver(store, streams=streams, admin_tokens=ADMIN_TOKENS)
    grpc = f"127.0.0.1:{receiver.grpc_port}"
    send_events(grpc, "acme", 4)
    send_events(grpc, "globex", 3)
    wait_for(lambda: sum(b.count(b"\n") for b in up.bodies()) >= 7, what="siem delivered")
    wait_for(lambda: down.refused >= 2, what="partner refused")
    yield receiver
    receiver.stop_listeners()
    up.close()
    down.close()


def cells(page, name: str) -> dict[str, str]:
    row = page.locator(f"#streams-body tr[data-stream='{name}']")
    keys = [
        "stream",
        "kind",
        "tenants",
        "position",
        "lag_events",
        "lag_time",
        "backlog",
        "delivered",
        "failures",
        "error",
    ]
    return dict(zip(keys, [c.inner_text() for c in row.locator("td").all()], strict=True))


def test_the_streams_page_shows_each_streams_state_to_an_admin(browser, streaming):  # noqa: F811
    context, page, base, errors = sign_in(browser, streaming.admin_port, ADMIN)
    try:
        page.click("#nav-streams")
        page.wait_for_url(base + "/streams")
        page.wait_for_selector("#streams-body tr[data-stream='partner']")
        siem, partner = cells(page, "siem"), cells(page, "partner")
        assert siem["kind"].startswith("webhook") and "/in" in siem["kind"]
        assert siem["tenants"] == "*" and siem["backlog"] == "ok"
        # caught up but for the admin's own trail events, committed as the page loads
        lag = int(siem["lag_events"].split()[0].replace(",", ""))
        assert lag <= 10 and (lag > 0 or siem["lag_time"] == "0 s"), siem
        delivered, batches = re.match(r"([\d,]+) in ([\d,]+) batch", siem["delivered"]).groups()
        assert int(delivered) >= 7 and int(batches) >= 4  # the admin's own trail events may follow
        assert "next" in siem["position"] and siem["failures"] == "0" and siem["error"] == "—"
        assert partner["tenants"] == "acme" and partner["backlog"] == "backlog over limit"
        lag, limit = partner["lag_events"].split("\n")
        assert int(lag) >= 4 and limit == "limit 2"
        assert "nothing delivered yet" in partner["position"]
        assert int(partner["failures"]) >= 2 and "HTTP 503" in partner["error"]
        assert partner["delivered"].startswith("0 in 0 batches")
        text = page.content()
        assert SECRET not in text and "header-token" not in text and "***" not in text
        # refresh: the partner's failures keep counting
        before = int(partner["failures"])
        page.wait_for_timeout(1500)
        page.click("#streams-refresh")
        wait_for(lambda: int(cells(page, "partner")["failures"]) > before, what="the refreshed failures")
        assert errors == []
    finally:
        context.close()


def test_an_auditor_has_no_streams_page(browser, streaming):  # noqa: F811
    context, page, base, errors = sign_in(browser, streaming.admin_port, ACME_AUDITOR)
    try:
        assert page.locator("#nav-streams").is_hidden()
        page.goto(base + "/streams")
        page.wait_for_selector("#streams-error:not(:empty)")
        assert (
            "403" in page.inner_text("#streams-error") or "admin" in page.inner_text("#streams-error").lower()
        )
        assert page.locator("#streams-body tr").count() == 0
        assert errors == []
    finally:
        context.close()
