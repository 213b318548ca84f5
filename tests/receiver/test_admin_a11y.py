"""Admin UI v2, issue 15 items 8 and 11-13, in real Chromium against a real receiver: the session
shared by tabs (and why one ends), the 390 px layout, keyboard and screen-reader paths with axe-core
(WCAG 2.1 AA) on every page in light and dark, the tenant list of a scoped token, dark mode."""

from __future__ import annotations

import re

import pytest
from admin_seed import ACME_AUDITOR, ADMIN, ADMIN_TOKENS, seed
from browser_support import browser, needs_chromium, sign_in_page, visible_rows  # noqa: F401 - the browser fixture
from conftest import REPO, start_receiver
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from receiver.admin.session import COOKIE, SALT, fingerprint

AXE = REPO / "tests" / "interop" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

pytestmark = needs_chromium


@pytest.fixture
def served(store, tmp_path):
    receiver = start_receiver(
        store, admin_tokens=ADMIN_TOKENS, integrity={"checkpoint_dir": str(tmp_path / "checkpoints")}
    )
    seeded = seed(f"127.0.0.1:{receiver.grpc_port}")
    yield receiver, seeded, f"http://127.0.0.1:{receiver.admin_port}"
    receiver.stop_listeners()


def new_context(browser, **options):  # noqa: F811
    options.setdefault("viewport", {"width": 1440, "height": 900})
    context = browser.new_context(**options)
    errors: list[str] = []
    context.on("weberror", lambda e: errors.append(str(e.error)))
    return context, errors


def signed_in_page(context, base: str, token: str, path: str = "/"):
    return sign_in_page(context.new_page(), base, token, path)


def test_the_session_is_shared_by_tabs_and_hidden_from_scripts(browser, served):  # noqa: F811
    _, seeded, base = served
    context, errors = new_context(browser)
    try:
        page = signed_in_page(context, base, ACME_AUDITOR)
        visible_rows(page)
        # the token is nowhere a script can read it
        assert page.evaluate("document.cookie") == ""
        stored = page.evaluate("JSON.stringify([{...sessionStorage}, {...localStorage}])")
        assert ACME_AUDITOR not in stored
        cookie = next(c for c in context.cookies() if c["name"] == COOKIE)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and ACME_AUDITOR not in cookie["value"]
        # a second tab (what Ctrl-click opens) goes straight to the event
        link = page.get_attribute("#events-body tr a", "href")
        second = context.new_page()
        second.goto(base + link)
        second.wait_for_selector("#detail-body:not([hidden])")
        assert second.is_hidden("#view-signin")
        # signing out in one tab signs the other out, and it says so
        second.click("#sign-out")
        second.wait_for_selector("#view-signin:not([hidden])")
        page.wait_for_selector("#view-signin:not([hidden])")
        assert "another tab" in page.inner_text("#signin-notice")
        page.reload()
        page.wait_for_selector("#view-signin:not([hidden])")
        assert page.is_hidden("#nav")
        # and signing in again in one tab brings the other back
        second.fill("#signin-token", ACME_AUDITOR)
        second.click("#signin-form button[type=submit]")
        visible_rows(page)
        assert page.is_hidden("#view-signin")
        assert errors == []
    finally:
        context.close()


class _Yesterday(TimestampSigner):
    def get_timestamp(self) -> int:
        return super().get_timestamp() - 86400


def test_an_expired_or_revoked_session_says_why(browser, served, store):  # noqa: F811
    receiver, _, base = served
    context, errors = new_context(browser)
    try:
        page = signed_in_page(context, base, ACME_AUDITOR)
        visible_rows(page)
        valid = next(c for c in context.cookies() if c["name"] == COOKIE)
        expired = URLSafeTimedSerializer(ACME_AUDITOR, salt=SALT, signer=_Yesterday).dumps(
            {"fp": fingerprint(ACME_AUDITOR)}
        )
        context.add_cookies([{**valid, "value": expired}])
        # the open page's next request finds the session expired: sign-in, with the reason
        page.click("#search-button")
        page.wait_for_selector("#view-signin:not([hidden])")
        assert "session expired" in page.inner_text("#signin-notice")
        # signing in again works and clears the notice
        page.fill("#signin-token", ACME_AUDITOR)
        page.click("#signin-form button[type=submit]")
        visible_rows(page)
        assert page.is_hidden("#signin-notice") or page.inner_text("#signin-notice") == ""
        receiver.stop_listeners()
        # the token is taken out of the config: its sessions end, and the page says it was revoked
        restarted = start_receiver(
            store, admin_tokens=[t for t in ADMIN_TOKENS if t["token"] != ACME_AUDITOR]
        )
        try:
            page.goto(f"http://127.0.0.1:{restarted.admin_port}/")
            page.wait_for_selector("#view-signin:not([hidden])")
            assert "revoked" in page.inner_text("#signin-notice")
        finally:
            restarted.stop_listeners()
        assert errors == []
    finally:
        context.close()


def test_phone_width_header_fits_and_tables_scroll(browser, served):  # noqa: F811
    _, seeded, base = served
    context, errors = new_context(
        browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page = signed_in_page(context, base, ACME_AUDITOR, "/?trail=1")
        visible_rows(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        header = page.query_selector(".topbar").bounding_box()
        assert header["width"] <= 390
        sign_out = page.query_selector("#sign-out").bounding_box()
        assert sign_out["x"] >= 0 and sign_out["x"] + sign_out["width"] <= 390
        shown = [box for nav in page.query_selector_all("#nav a") if (box := nav.bounding_box())]
        assert shown  # links the role may not use are hidden (no box)
        for box in shown:
            assert box["y"] < header["y"] + header["height"]
        # the User column holds each name on one line; the table scrolls sideways instead
        # (the text's own height: a cell is as tall as its row)
        heights = page.eval_on_selector_all(
            "#events-body tr td:nth-child(3)",
            "cells => cells.map(c => { const r = document.createRange(); r.selectNodeContents(c);"
            " return r.getBoundingClientRect().height / parseFloat(getComputedStyle(c).fontSize); })",
        )
        assert heights and max(heights) < 1.8, heights
        wrap = page.evaluate(
            "(() => { const w = document.querySelector('#results-card .table-wrap');"
            " return [w.scrollWidth, w.clientWidth]; })()"
        )
        assert wrap[0] > wrap[1]
        # no page is wider than the phone: wide tables scroll inside their card
        for path, ready in (
            (f"/events/{seeded.ids['update']}", "#detail-body:not([hidden])"),
            ("/compliance?tenant=acme", "#compliance-body:not([hidden])"),
            ("/alerts", "#view-alerts:not([hidden])"),
        ):
            page.goto(base + path)
            page.wait_for_selector(ready)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
        page.click("#sign-out")
        page.wait_for_selector("#view-signin:not([hidden])")
        card = page.query_selector(".signin-card").bounding_box()
        assert card["x"] >= 0 and card["x"] + card["width"] <= 390
        assert errors == []
    finally:
        context.close()


def test_keyboard_path_headings_and_announcements(browser, served):  # noqa: F811
    _, seeded, base = served
    context, errors = new_context(browser)
    try:
        page = context.new_page()
        page.goto(base + "/")
        page.wait_for_selector("#view-signin:not([hidden])")
        assert page.inner_text("label[for=signin-token]") == "Access token"
        assert page.evaluate("document.activeElement.id") == "signin-token"
        page.fill("#signin-token", ACME_AUDITOR)
        page.keyboard.press("Enter")
        visible_rows(page)
        assert page.get_attribute("#results-summary", "aria-live") == "polite"
        assert page.inner_text("#view-search h1") == "Search audit events"
        # from a freshly loaded page: Tab to the skip link, Enter, and the first result has focus
        page.reload()
        visible_rows(page)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "skip-link"
        assert page.inner_text("#skip-link") == "Skip to results"
        assert page.is_visible("#skip-link")
        page.keyboard.press("Enter")
        first = page.get_attribute("#events-body tr a", "href")
        assert page.evaluate("document.activeElement.getAttribute('href')") == first
        # opening it moves focus to the event's heading
        page.keyboard.press("Enter")
        page.wait_for_selector("#detail-body:not([hidden])")
        page.wait_for_function("() => document.activeElement && document.activeElement.id === 'detail-title'")
        # a change of page moves focus to that page's <h1>
        page.click("#nav a[data-nav=compliance]")
        page.wait_for_selector("#compliance-body:not([hidden])")
        assert (
            page.evaluate("document.activeElement.tagName + ':' + document.activeElement.textContent")
            == "H1:Compliance"
        )
        page.go_back()
        page.wait_for_selector("#detail-body:not([hidden])")
        page.click("#detail-back")
        visible_rows(page)
        page.wait_for_function("() => document.activeElement && document.activeElement.tagName === 'H1'")
        # a new search keeps focus in the form (the summary is announced instead)
        page.fill("#f-user", "alice")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"user=alice"))
        visible_rows(page)
        assert page.evaluate("document.activeElement.id") == "f-user"
        assert re.match(r"2 events", page.inner_text("#results-summary"))
        assert errors == []
    finally:
        context.close()


def axe_violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "tags => axe.run(document, { runOnly: { type: 'tag', values: tags } })"
        ".then(r => r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).slice(0, 5).join(', ')))",
        WCAG_AA,
    )
    return list(result)


@pytest.mark.skipif(not AXE.exists(), reason="axe-core not installed (make interop: npm ci in tests/interop)")
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_wcag_aa_violations_on_any_page(browser, served, scheme):  # noqa: F811
    _, seeded, base = served
    # bypass_csp: only so that axe.min.js can be injected; the page itself runs under its CSP elsewhere
    context, errors = new_context(browser, color_scheme=scheme, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(base + "/")
        page.wait_for_selector("#view-signin:not([hidden])")
        found = {"sign-in": axe_violations(page)}
        page.fill("#signin-token", ADMIN)
        page.click("#signin-form button[type=submit]")
        visible_rows(page)
        page.wait_for_selector("#stats:not([hidden])")
        found["search"] = axe_violations(page)
        page.goto(f"{base}/events/{seeded.ids['update']}")
        page.wait_for_selector("#detail-body:not([hidden])")
        found["detail"] = axe_violations(page)
        page.goto(base + "/compliance?tenant=acme")
        page.wait_for_selector("#compliance-body:not([hidden])")
        page.wait_for_selector("#verify-panel:not([hidden])")
        found["compliance"] = axe_violations(page)
        page.goto(base + "/alerts")
        page.wait_for_selector("#view-alerts:not([hidden])")
        page.wait_for_function(
            "() => document.querySelector('#alerts-body').children.length > 0"
            " || !document.querySelector('#alerts-empty').hidden"
        )
        found["alerts"] = axe_violations(page)
        page.goto(base + "/retention")
        page.wait_for_selector("#retention-body:not([hidden])")
        found["retention"] = axe_violations(page)
        page.goto(base + "/streams")
        page.wait_for_selector("#streams-empty:not([hidden])")
        found["streams"] = axe_violations(page)
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(base + "/")
        visible_rows(page)
        found["search at 390 px"] = axe_violations(page)
        page.goto(base + "/compliance?tenant=acme")
        page.wait_for_selector("#compliance-body:not([hidden])")
        # a table that scrolls sideways is reachable from the keyboard: a focusable region, or
        # through the links it holds (the counts link to their events)
        page.wait_for_function(
            "() => { const w = document.querySelector('#categories').closest('.table-wrap');"
            " return w.scrollWidth <= w.clientWidth || w.tabIndex === 0 || !!w.querySelector('a[href]'); }"
        )
        found["compliance at 390 px"] = axe_violations(page)
        assert {name: v for name, v in found.items() if v} == {}
        # the check can fail: an image without alt text is reported
        page.evaluate(
            "document.querySelector('main').append(Object.assign(document.createElement('img'), {src: 'data:,'}))"
        )
        assert any(v.startswith("image-alt") for v in axe_violations(page))
        assert errors == []
    finally:
        context.close()


def test_out_of_scope_tenant_stays_out_of_the_list_and_dark_mode(browser, served):  # noqa: F811
    _, _, base = served
    context, errors = new_context(browser, color_scheme="dark")
    try:
        page = signed_in_page(context, base, ACME_AUDITOR, "/?tenant=globex")
        page.wait_for_selector("#search-error:not(:empty)")
        options = page.eval_on_selector_all("#f-tenant option", "os => os.map(o => o.value)")
        assert options == ["", "acme"]
        assert "globex" in page.inner_text("#search-error")
        page.goto(base + "/compliance?tenant=globex")
        page.wait_for_selector("#view-compliance:not([hidden])")
        assert "globex" not in page.eval_on_selector_all("#c-tenant option", "os => os.map(o => o.value)")

        def luminance(selector: str) -> float:
            rgb = page.evaluate(f"getComputedStyle(document.querySelector('{selector}')).backgroundColor")
            r, g, b = (int(x) for x in re.findall(r"\d+", rgb)[:3])
            return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255

        assert luminance("html") < 0.15 and luminance(".card") < 0.2
        page.emulate_media(color_scheme="light")
        assert luminance("html") > 0.9 and luminance(".card") > 0.9
        assert errors == []
    finally:
        context.close()
