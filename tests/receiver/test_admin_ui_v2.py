"""Admin UI v2 (issue 15 items 1-4, issue 17's Alerts page) in real Chromium against a real
receiver: the audit trail hidden by default, totals, timeline zoom, facets, relative ranges,
saved views, local time, prefix/CIDR filters, suggestions and "did you mean", alert review."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlparse

import pytest
from admin_seed import ACME_AUDITOR, ADMIN, ADMIN_TOKENS, seed
from browser_support import browser, needs_chromium, sign_in, visible_rows  # noqa: F401 - the browser fixture
from conftest import start_receiver
from otlp_builders import audit_attrs, export, log_record, request

from receiver.filters import EventFilter

pytestmark = needs_chromium


@pytest.fixture
def receiver_seeded(store, tmp_path):
    receiver = start_receiver(
        store, admin_tokens=ADMIN_TOKENS, integrity={"checkpoint_dir": str(tmp_path / "checkpoints")}
    )
    seeded = seed(f"127.0.0.1:{receiver.grpc_port}")
    yield receiver, seeded
    receiver.stop_listeners()


def open_page(browser, receiver, token: str, **context_options):  # noqa: F811
    return sign_in(browser, receiver.admin_port, token, ready="#events-body tr", **context_options)


def summary_total(page) -> int:
    page.wait_for_selector("#results-summary:not(:text('Searching…'))")
    match = re.match(r"([\d,]+) events?", page.inner_text("#results-summary"))
    assert match, page.inner_text("#results-summary")
    return int(match.group(1).replace(",", ""))


def query_of(page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def test_trail_hidden_by_default_and_one_trail_event_per_search(browser, receiver_seeded, store):  # noqa: F811
    receiver, seeded = receiver_seeded
    context, page, base, errors = open_page(browser, receiver, ACME_AUDITOR)
    try:
        for _ in range(3):  # the same search, refreshed: recorded once
            page.goto(base + "/?user=alice")
            assert [r[3] for r in visible_rows(page)] == ["logout", "login"]
        searches = [
            e
            for e in store.search(EventFilter(event_name="audit.audit_log.read", user="ada.auditor"), 1000)
            if e["attributes"].get("audit.query.user") == "alice"
        ]
        assert len(searches) == 1
        page.goto(base + "/")
        rows = visible_rows(page)
        assert len(rows) == seeded.acme_count and not any(r[6].startswith("audit.audit_log") for r in rows)
        assert summary_total(page) == seeded.acme_count
        assert page.is_checked("#f-trail") is False
        page.check("#f-trail")
        page.wait_for_url(re.compile(r"trail=1"))
        rows = visible_rows(page)
        assert any(r[6] == "audit.audit_log.read" for r in rows)
        assert summary_total(page) > seeded.acme_count
        assert errors == []
    finally:
        context.close()


def test_total_histogram_zoom_and_facets(browser, receiver_seeded):  # noqa: F811
    receiver, seeded = receiver_seeded
    context, page, base, errors = open_page(browser, receiver, ACME_AUDITOR)
    try:
        assert summary_total(page) == seeded.acme_count
        page.wait_for_selector("#stats:not([hidden]) .histogram-svg .bar")
        action = page.inner_text("#facets [data-facet=action]")
        assert re.search(r"read\s+31", action) and re.search(r"login\s+2", action)
        assert re.search(r"svc-0\s+10", page.inner_text("#facets [data-facet=user]"))
        # a facet value filters on click
        page.click("#facets [data-facet=action] a.facet-value:has-text('login')")
        page.wait_for_url(re.compile(r"action=login"))
        assert summary_total(page) == 2 and {r[3] for r in visible_rows(page)} == {"login"}
        # its ≠ excludes
        page.goto(base + "/")
        summary_total(page)
        page.click("#facets [data-facet=action] li:has(a.facet-value:has-text('read')) a.facet-not")
        page.wait_for_url(re.compile(r"action=%21read"))
        assert summary_total(page) == seeded.acme_count - 31

        # click the fullest bar: since/until become its bucket, and the total its count
        page.goto(base + "/")
        summary_total(page)
        page.wait_for_selector(".histogram-svg .bar")
        counts = page.eval_on_selector_all(
            ".histogram-svg .bar", "bars => bars.map(b => Number(b.dataset.count))"
        )
        assert sum(counts) == seeded.acme_count
        fullest = counts.index(max(counts))
        box = page.locator(".histogram-svg").bounding_box()
        width = box["width"] / len(counts)
        y = box["y"] + box["height"] - 2
        page.mouse.click(box["x"] + width * (fullest + 0.5), y)
        page.wait_for_url(re.compile(r"until="))
        q = query_of(page)
        assert q["since"][0] < q["until"][0]
        assert summary_total(page) == max(counts)
        # drag across bars: the range of the bars dragged over
        page.goto(base + "/")
        summary_total(page)
        page.wait_for_selector(".histogram-svg .bar")
        nonzero = [i for i, c in enumerate(counts) if c]
        lo, hi = nonzero[0], nonzero[-1] - 1
        page.mouse.move(box["x"] + width * (lo + 0.5), y)
        page.mouse.down()
        page.mouse.move(box["x"] + width * (hi + 0.5), y, steps=5)
        page.mouse.up()
        page.wait_for_url(re.compile(r"until="))
        assert summary_total(page) == sum(counts[lo : hi + 1])
        assert errors == []
    finally:
        context.close()


def test_relative_ranges_saved_views_and_local_time(browser, receiver_seeded):  # noqa: F811
    receiver, seeded = receiver_seeded
    context, page, base, errors = open_page(browser, receiver, ACME_AUDITOR, timezone_id="Asia/Kolkata")
    try:
        page.click("[data-range='now-7d']")
        page.wait_for_url(re.compile(r"since=now-7d"))
        assert summary_total(page) == seeded.acme_count
        page.reload()
        assert page.input_value("#f-since") == "now-7d" and "since=now-7d" in page.url
        # saved views: named, kept in this browser
        page.fill("#f-action", "login")
        page.click("#search-button")
        page.wait_for_url(re.compile(r"action=login"))
        saved = page.url
        page.fill("#view-name", "Logins this week")
        page.click("#save-view")
        page.goto(base + "/")
        summary_total(page)
        page.select_option("#views", label="Logins this week")
        page.wait_for_url(saved)
        assert summary_total(page) == 2
        page.reload()
        assert page.eval_on_selector("#views", "s => s.selectedOptions[0].text") == "Logins this week"
        # local time (Asia/Kolkata, UTC+05:30) and back
        utc_first = visible_rows(page)[0][0]
        page.select_option("#f-tz", "local")
        page.wait_for_selector("#th-time:text('Time (local time)')")
        local_first = visible_rows(page)[0][0]
        as_utc = dt.datetime.fromisoformat(utc_first)
        assert dt.datetime.fromisoformat(local_first) - as_utc == dt.timedelta(hours=5, minutes=30)
        # an absolute time typed in local time reaches the URL as UTC
        page.fill("#f-since", (as_utc + dt.timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M:%S"))
        page.click("#search-button")
        page.wait_for_url(re.compile(r"since=\d{4}-"))
        assert query_of(page)["since"][0] == as_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        page.select_option("#f-tz", "utc")
        page.wait_for_selector("#th-time:text('Time (UTC)')")
        assert page.input_value("#f-since") == as_utc.strftime("%Y-%m-%d %H:%M:%S")
        assert errors == []
    finally:
        context.close()


def test_prefix_cidr_suggestions_and_did_you_mean(browser, receiver_seeded):  # noqa: F811
    receiver, _ = receiver_seeded
    context, page, base, errors = open_page(browser, receiver, ACME_AUDITOR)
    try:
        page.fill("#f-ip", "203.0.113.0/24")
        page.click("#search-button")
        page.wait_for_url(re.compile(r"ip=203.0.113.0%2F24"))
        assert summary_total(page) == 6
        assert all(r[7].startswith("203.0.113.") for r in visible_rows(page))
        page.goto(base + "/")
        page.fill("#f-user", "svc-*")
        page.click("#search-button")
        page.wait_for_url(re.compile(r"user=svc-"))
        assert summary_total(page) == 30
        # suggestions from the data's top values
        page.wait_for_selector("#stats[aria-busy=false]", state="attached")
        options = page.eval_on_selector_all("#dl-user option", "os => os.map(o => o.value)")
        assert set(options) == {"svc-0", "svc-1", "svc-2"}
        page.goto(base + "/")
        summary_total(page)
        page.wait_for_selector("#stats[aria-busy=false]", state="attached")
        options = page.eval_on_selector_all("#dl-action option", "os => os.map(o => o.value)")
        assert {"read", "login", "update", "grant"} <= set(options)
        # 0 results, with a hint that leads to the data
        page.goto(base + "/?user=ALICE")
        assert summary_total(page) == 0
        page.wait_for_selector("#did-you-mean:not([hidden])")
        assert "Did you mean user alice" in page.inner_text("#did-you-mean")
        page.click("#did-you-mean a")
        page.wait_for_url(re.compile(r"user=alice"))
        assert summary_total(page) == 2
        page.goto(base + "/?user=bo")
        assert summary_total(page) == 0
        page.wait_for_selector("#did-you-mean:not([hidden])")
        assert "user bo*" in page.inner_text("#did-you-mean")
        assert errors == []
    finally:
        context.close()


def test_alerts_page_lists_links_and_reviews(browser, store):  # noqa: F811
    rule = {"name": "privilege-grant", "kind": "match", "match": {"action": "grant"}, "group_by": ["user_id"]}
    receiver = start_receiver(
        store,
        admin_tokens=ADMIN_TOKENS,
        alerts={"interval_seconds": 3600, "default_pack": False, "rules": [rule]},
    )
    try:
        receiver.alerts.tick()  # the first evaluation takes over (positions start at the present)
        now = dt.datetime.now(dt.timezone.utc)
        grant = log_record(
            audit_attrs(audit__action="grant", audit__resource__type="role", enduser__id="mallory"),
            event_name="audit.role.grant",
            time_ns=int(now.timestamp() * 1_000_000) * 1000,
        )
        export(f"127.0.0.1:{receiver.grpc_port}", request([grant], service_name="web"))
        (alert,) = receiver.alerts.tick()
        context, page, base, errors = open_page(browser, receiver, ADMIN)
        try:
            page.click("#nav a[data-nav=alerts]")
            page.wait_for_selector(f"#alerts-body tr[data-alert='{alert.id}']")
            row = page.inner_text(f"#alerts-body tr[data-alert='{alert.id}']")
            assert "privilege-grant" in row and "user_id=mallory" in row and "open" in row
            page.click(f"tr[data-alert='{alert.id}'] a.alert-events")
            page.wait_for_url(re.compile(r"action=grant"))
            rows = visible_rows(page)
            assert [(r[2], r[3]) for r in rows] == [("mallory", "grant")]
            page.go_back()
            page.wait_for_selector(f"tr[data-alert='{alert.id}']")
            page.click(f"tr[data-alert='{alert.id}'] summary")
            page.fill(f"#note-{alert.id}", "mallory's grant was approved in CHG-42")
            page.select_option(f"#status-{alert.id}", "reviewed")
            page.click(f"tr[data-alert='{alert.id}'] button[type=submit]")
            page.wait_for_selector(f"tr[data-alert='{alert.id}'] .status:text('reviewed')")
            assert "root.admin: mallory's grant was approved in CHG-42" in page.inner_text(
                f"tr[data-alert='{alert.id}']"
            )
            (reviewed,) = store.search(EventFilter(event_name="audit.alert.reviewed"), 10)
            assert reviewed["user_id"] == "root.admin" and reviewed["resource_id"] == alert.id
            page.select_option("#a-status", "open")
            page.wait_for_url(re.compile(r"status=open"))
            page.wait_for_selector("#alerts-empty:not([hidden])")
            page.select_option("#a-status", "reviewed")
            page.wait_for_selector(f"tr[data-alert='{alert.id}']")
            assert errors == []
        finally:
            context.close()
    finally:
        receiver.stop_listeners()


def test_large_export_asks_with_the_count_paging_scrolls_up_and_an_error_disables_the_pager(
    browser,  # noqa: F811
    receiver_seeded,
):
    receiver, seeded = receiver_seeded
    now = dt.datetime.now(dt.timezone.utc)
    bulk = 10_050
    for start in range(0, bulk, 2_500):
        records = [
            log_record(
                audit_attrs(
                    audit__tenant__id="bulk",
                    audit__action="read",
                    enduser__id=f"u{i % 7}",
                    audit__resource__type="doc",
                ),
                event_name="audit.doc.read",
                time_ns=int((now - dt.timedelta(seconds=i)).timestamp() * 1_000_000) * 1000,
            )
            for i in range(start, min(bulk, start + 2_500))
        ]
        answer = export(f"127.0.0.1:{receiver.grpc_port}", request(records, service_name="bulk"))
        assert answer.partial_success.rejected_log_records == 0
    context, page, base, errors = open_page(browser, receiver, ADMIN)
    try:
        page.goto(base + "/?limit=25")
        expected = bulk + seeded.acme_count + seeded.globex_count
        assert summary_total(page) == expected
        asked: list[str] = []

        def dismiss(dialog):
            asked.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", dismiss)
        downloads: list[object] = []
        page.on("download", lambda d: downloads.append(d))
        page.click("#export-csv")
        for _ in range(100):
            if asked:
                break
            page.wait_for_timeout(100)
        page.wait_for_timeout(500)  # time for a download to start, had the export gone ahead
        assert asked and f"Export {expected:,} events as CSV?" in asked[0]
        assert downloads == []  # declined: nothing was fetched

        # "Older" from the bottom of the page lands at the top of the next page's results
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        bottom = page.evaluate("window.scrollY")
        assert bottom > 300
        page.click("#page-older")
        page.wait_for_selector("#page-label:text('Page 2')")
        # a function, not an expression: polling an expression evals it, which the page's CSP refuses
        page.wait_for_function(f"() => window.scrollY < {bottom}")
        top = page.evaluate("document.getElementById('results-card').getBoundingClientRect().top")
        assert 0 <= top <= 120, top

        # a page that fails: both pager buttons are disabled beside the error
        page.goto(base + "/?limit=25&cursor=not-a-cursor&page=2")
        page.wait_for_selector("#search-error:not(:empty)")
        assert page.is_disabled("#page-newer") and page.is_disabled("#page-older")
        assert errors == []
    finally:
        context.close()
