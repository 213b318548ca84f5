"""The admin UI in a real browser (Debian's chromium through Playwright) against a real receiver:
sign in, filter, page, open a detail with its diff, follow "same user", download a CSV, and an
XSS payload that stays text.
The documentation's screenshots are made by `make screenshots` (tests/screenshots.py)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from admin_seed import ACME_AUDITOR, ADMIN, ADMIN_TOKENS, XSS_REASON, XSS_RESOURCE, XSS_USER, seed
from browser_support import browser, needs_chromium, visible_rows  # noqa: F401 - the browser fixture
from conftest import start_receiver

pytestmark = needs_chromium


@pytest.fixture
def ui(store, browser, tmp_path):  # noqa: F811 - the browser fixture
    # checkpoints of its own: the tests' databases share one chDB path (and its default state dir)
    receiver = start_receiver(
        store, admin_tokens=ADMIN_TOKENS, integrity={"checkpoint_dir": str(tmp_path / "checkpoints")}
    )
    seeded = seed(f"127.0.0.1:{receiver.grpc_port}")
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page, f"http://127.0.0.1:{receiver.admin_port}", seeded, errors
    context.close()
    receiver.stop_listeners()


def row_ids(page) -> list[str]:
    visible_rows(page)
    return [
        href.rsplit("/", 1)[1]
        for href in page.eval_on_selector_all(
            "#events-body tr a", "links => links.map(a => a.getAttribute('href'))"
        )
    ]


def save_screenshot(page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_auditor_signs_in_filters_pages_and_reads_a_diff(ui, tmp_path):
    page, base, seeded, errors = ui
    page.goto(base + "/")
    page.wait_for_selector("#view-signin:not([hidden])")
    page.fill("#signin-token", "not-the-right-token-0000")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#signin-error:text('not known')")
    page.fill("#signin-token", ACME_AUDITOR)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#events-body tr")
    assert page.inner_text("#who-name") == "ada.auditor"
    # the session is an HttpOnly cookie: no script can read the token
    assert page.evaluate("document.cookie") == "" and page.evaluate("sessionStorage.length") == 0
    assert ACME_AUDITOR not in page.url
    rows = visible_rows(page)
    assert {r[1] for r in rows} == {"acme"} and len(rows) == seeded.acme_count
    save_screenshot(page, tmp_path, "screenshot-search.png")

    # filter: the URL carries it, so the search can be shared
    page.fill("#f-user", "alice")
    page.click("#search-button")
    page.wait_for_url(re.compile(r"user=alice"))
    rows = visible_rows(page)
    assert [(r[2], r[3]) for r in rows] == [("alice", "logout"), ("alice", "login")]
    page.reload()
    assert [r[3] for r in visible_rows(page)] == ["logout", "login"]

    # pages of 25: older, then newer again (the trail's own read events are on the pages too)
    page.goto(base + "/?limit=25")
    first = row_ids(page)
    assert len(first) == 25 and page.is_disabled("#page-newer")
    page.click("#page-older")
    page.wait_for_url(re.compile(r"cursor="))
    second = row_ids(page)
    assert second and not set(first) & set(second)
    acme_ids = {v for k, v in seeded.ids.items() if not k.startswith("globex")}
    assert acme_ids <= set(first) | set(second)
    assert page.inner_text("#page-label") == "Page 2" and page.is_disabled("#page-older")
    page.click("#page-newer")
    page.wait_for_selector("#page-label:text('Page 1')")
    again = row_ids(page)  # the same page, under the read events recorded since
    assert len(again) == 25 and set(first[:20]) <= set(again)

    # detail with the changes diff
    page.goto(base + "/?resource_id=inv-7")
    visible_rows(page)
    page.click("#events-body tr a")
    page.wait_for_selector("#detail-body:not([hidden])")
    assert page.url == f"{base}/events/{seeded.ids['update']}"
    diff = [
        [c.inner_text() for c in r.query_selector_all("th, td")]
        for r in page.query_selector_all("#detail-changes tbody tr")
    ]
    assert diff == [["amount", "10", "12"], ["status", "open", "paid"]]
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in page.inner_text("#detail-fields")
    assert page.inner_text("#detail-attributes") == "ticket\tINC-7"
    save_screenshot(page, tmp_path, "screenshot-detail.png")

    # "what else did this user do"
    page.click("#detail-related a:text('Same user')")
    page.wait_for_url(re.compile(r"user=bob"))
    assert {r[2] for r in visible_rows(page)} == {"bob"}
    assert page.input_value("#f-user") == "bob"
    assert errors == []


def test_csv_download_holds_the_filtered_rows(ui, tmp_path):
    page, base, seeded, errors = ui
    page.goto(base + "/")
    page.fill("#signin-token", ACME_AUDITOR)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#events-body tr")
    page.goto(base + "/?action=login")
    visible_rows(page)
    with page.expect_download() as info:
        page.click("#export-csv")
    download = info.value
    assert re.fullmatch(r"audit-events-acme-action-login-\d{8}T\d{6}Z\.csv", download.suggested_filename)
    # streamed by the page (token in a header), saved from memory: no token in any URL
    assert download.url.startswith("blob:") and ACME_AUDITOR not in download.url
    path = tmp_path / "download.csv"
    download.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert sorted(r["id"] for r in rows) == sorted([seeded.ids["login"], seeded.ids["failed_login"]])
    assert {r["action"] for r in rows} == {"login"} and {r["tenant_id"] for r in rows} == {"acme"}
    assert errors == []


def test_xss_payloads_render_as_inert_text(ui):
    page, base, seeded, errors = ui
    page.goto(base + "/")
    page.fill("#signin-token", ACME_AUDITOR)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#events-body tr")
    page.goto(base + "/?q=window")
    rows = visible_rows(page)
    assert [r[2] for r in rows] == [XSS_USER]
    assert XSS_RESOURCE in rows[0][5]
    page.goto(f"{base}/events/{seeded.ids['xss']}")
    page.wait_for_selector("#detail-body:not([hidden])")
    fields = page.inner_text("#detail-fields")
    assert XSS_USER in fields and XSS_REASON in fields and XSS_RESOURCE in fields
    assert page.inner_text("#detail-changes tbody td.diff-old") == XSS_REASON
    assert page.inner_text("#detail-attributes td") == "<b>not bold</b>"
    # nothing ran, no element was made from the data, no link carries a script URL
    assert page.evaluate("window.__xss") is None
    assert page.query_selector_all("main img, main script, #detail-attributes b") == []
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
    assert hrefs and all(h.startswith("/") or h == "#main" for h in hrefs), hrefs  # #main: the skip link
    # following the "same resource" link searches for the payload as a value
    page.click("#detail-related a:text('Same resource')")
    page.wait_for_url(re.compile(r"resource_id=javascript"))
    assert [r[2] for r in visible_rows(page)] == [XSS_USER]
    assert page.evaluate("window.__xss") is None
    assert errors == []


def test_compliance_page_and_the_verification_panel(ui):
    page, base, _, errors = ui
    page.goto(base + "/compliance")
    page.fill("#signin-token", ACME_AUDITOR)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#compliance-body:not([hidden])")
    table = page.inner_text("#categories")
    assert "Failed logins" in table and "PCI DSS 10.2.1.4" in table
    failed = page.inner_text("#categories tbody tr:has-text('Failed logins')")
    assert "Recorded today" in failed
    assert "None in 30 days" in page.inner_text("#categories tbody tr:has-text('Administrative actions')")
    assert "Incomplete" in page.inner_text("#field-completeness tbody tr:has-text('User identification')")
    # /api/verify is for admin tokens; auditors see their tenants' status (/api/integrity-status)
    page.wait_for_selector("#verify-status .status-ok", timeout=60_000)
    page.click("#sign-out")
    page.wait_for_selector("#view-signin:not([hidden])")
    assert page.context.cookies() == []  # the server cleared the session cookie
    page.fill("#signin-token", ADMIN)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#events-body tr")
    page.goto(base + "/compliance?tenant=acme")
    page.wait_for_selector("#verify-status .status-ok", timeout=60_000)
    assert "Intact" in page.inner_text("#verify-status")
    assert "events in the tamper-evidence log" in page.inner_text("#verify-status")
    assert errors == []


def test_compliance_page_lists_events_that_never_arrived(store, browser):  # noqa: F811 - the browser fixture
    """A source whose number 3 never arrived, in a real browser; a hostile service name stays text."""
    from otlp_builders import audit_attrs, export, log_record, request

    receiver = start_receiver(store, admin_tokens=ADMIN_TOKENS, sources={"gap_grace_seconds": 0})
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        records = [
            log_record(audit_attrs(audit__source__id="ab12cd34ef56ab78.0", audit__source__seq=seq))
            for seq in (1, 2, 4, 5, 9)
        ]
        export(f"127.0.0.1:{receiver.grpc_port}", request(records, service_name=XSS_USER))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://127.0.0.1:{receiver.admin_port}/compliance?tenant=acme")
        page.fill("#signin-token", ACME_AUDITOR)
        page.click("#signin-form button[type=submit]")
        page.wait_for_selector("#compliance-body:not([hidden])")
        text = page.inner_text("#findings-list")
        assert "Events never arrived" in text
        assert (
            f"4 event(s) sent by source ab12cd34ef56ab78.0 (service {XSS_USER}) never arrived (seq 3, 6..8)"
            in text
        )
        assert page.evaluate("window.__xss") is None and errors == []
    finally:
        context.close()
        receiver.stop_listeners()
