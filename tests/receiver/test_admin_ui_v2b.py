"""Admin UI v2, second part (issue 15 items 5, 6, 7, 9's progress and order, and the relative
`until` histogram bug), in real Chromium against a real receiver."""

from __future__ import annotations

import datetime as dt
import json
import re

import httpx
import pytest
from admin_seed import ACME_AUDITOR, ADMIN, ADMIN_TOKENS, seed
from browser_support import browser, needs_chromium, visible_rows  # noqa: F401 - the browser fixture
from conftest import start_receiver
from otlp_builders import audit_attrs, export, log_record, request
from test_admin_ui_v2 import open_page, summary_total

from receiver.filters import EventFilter
from receiver.store.sql import Statement

pytestmark = needs_chromium
UTC = dt.timezone.utc


@pytest.fixture
def receiver_seeded(store, tmp_path):
    receiver = start_receiver(
        store, admin_tokens=ADMIN_TOKENS, integrity={"checkpoint_dir": str(tmp_path / "checkpoints")}
    )
    seeded = seed(f"127.0.0.1:{receiver.grpc_port}")
    yield receiver, seeded
    receiver.stop_listeners()


def shown_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.strip()[:19]).replace(tzinfo=UTC)


def test_histogram_of_a_relative_until_ends_there_not_now(browser, receiver_seeded):  # noqa: F811
    receiver, seeded = receiver_seeded
    context, page, base, errors = open_page(browser, receiver, ACME_AUDITOR)
    try:
        # one bucket (as a narrow chart asks for): its end is the range's end, now-2h
        page.route(
            re.compile(r".*/api/stats\?.*buckets=40.*"),
            lambda route: route.continue_(url=route.request.url.replace("buckets=40", "buckets=1")),
        )
        page.goto(base + "/?since=now-7h&until=now-2h")
        summary_total(page)
        page.wait_for_selector("#stats:not([hidden]) .histogram-svg .bar", state="attached")
        end = shown_time(page.inner_text("#histogram-to"))
        expected = dt.datetime.now(UTC) - dt.timedelta(hours=2)
        assert abs((end - expected).total_seconds()) < 120, (end, expected)
        assert errors == []
    finally:
        context.close()


def hot_rows(row_text: str) -> int:
    return int(re.search(r"\t([\d,]+)\n", row_text).group(1).replace(",", ""))


def test_retention_page_policies_holds_and_job_history(browser, store, tmp_path):  # noqa: F811
    receiver = start_receiver(
        store,
        admin_tokens=ADMIN_TOKENS,
        integrity={"checkpoint_dir": str(tmp_path / "checkpoints")},
        retention={"default": "pci", "tenants": {"globex": {"preset": "hipaa"}}, "interval_seconds": 0},
        archive={"path": str(tmp_path / "archive")},
    )
    try:
        seeded = seed(f"127.0.0.1:{receiver.grpc_port}")
        old = dt.datetime.now(UTC) - dt.timedelta(days=200)
        records = [
            log_record(audit_attrs(enduser__id=f"old{i}"), time_ns=int(old.timestamp() * 1e9) + i)
            for i in range(4)
        ]
        assert (
            export(f"127.0.0.1:{receiver.grpc_port}", request(records)).partial_success.rejected_log_records
            == 0
        )

        # an auditor is not offered the page, and opening it gives the API's reason
        context, page, base, errors = open_page(browser, receiver, ACME_AUDITOR)
        try:
            assert page.is_hidden("nav a[data-nav=retention]")
            page.goto(base + "/retention")
            page.wait_for_selector("#retention-error:not(:empty)")
            assert "admin" in page.inner_text("#retention-error")
            assert page.is_hidden("#retention-body")
        finally:
            context.close()

        context, page, base, errors = open_page(browser, receiver, ADMIN)
        try:
            page.click("nav a[data-nav=retention]")
            page.wait_for_url(re.compile(r"/retention$"))
            page.wait_for_selector("#retention-table tr[data-tenant=acme]")
            acme = page.inner_text("#retention-table tr[data-tenant=acme]")
            assert "pci" in acme and "hot 90 d" in acme and "kept 365 d" in acme
            hot_before = hot_rows(acme)  # the old ones still in the store, and the trail's reads
            assert hot_before >= seeded.acme_count + 4 and "0 in 0 d" in acme
            assert "hipaa" in page.inner_text("#retention-table tr[data-tenant=globex]")
            page.wait_for_selector("#retention-history-empty", state="visible")

            # the job runs: the 200-day-old events leave the hot store for the archive, recorded
            page.click("#retention-run")
            page.wait_for_selector("#retention-history tbody tr")
            history = page.inner_text("#retention-history")
            assert "archive" in history and "acme" in history
            acme = page.inner_text("#retention-table tr[data-tenant=acme]")
            assert "4 in 1 d" in acme and hot_rows(acme) < hot_before, acme

            # a legal hold: who and why, then released with a reason
            page.select_option("#hold-tenant", "acme")
            page.fill("#hold-reason", "Matter 2026-17: <b>litigation</b>")
            page.click("#hold-form button[type=submit]")
            page.wait_for_selector("#retention-table tr[data-tenant=acme] .status-warn")
            acme = page.inner_text("#retention-table tr[data-tenant=acme]")
            assert "On hold" in acme and "root.admin" in acme and "Matter 2026-17: <b>litigation</b>" in acme
            assert "held: nothing expires" in acme
            assert "acme" not in page.eval_on_selector_all(
                "#hold-tenant option", "os => os.map(o => o.value)"
            )
            page.click("#retention-table tr[data-tenant=acme] details summary")
            page.fill("#release-acme", "matter closed")
            page.click("#retention-table tr[data-tenant=acme] .release-form button")
            page.wait_for_selector("#retention-table tr[data-tenant=acme]:not(:has(.status-warn))")
            assert store.search(EventFilter(event_name="audit.legal_hold.*", tenant="acme"), 10)
            assert errors == []
        finally:
            context.close()
    finally:
        receiver.stop_listeners()


def sql(store, text: str) -> None:
    store._command(Statement(text.replace("{db}", store.database)))


def test_compliance_is_honest_links_counts_and_shows_proofs(browser, receiver_seeded, store):  # noqa: F811
    receiver, seeded = receiver_seeded
    receiver._checkpoints.seal_all()
    base = f"http://127.0.0.1:{receiver.admin_port}"
    # auditors get their own tenants' status, not others'; /api/verify stays admin-only
    auditor = {"authorization": f"Bearer {ACME_AUDITOR}"}
    assert (
        httpx.get(f"{base}/api/integrity-status", params={"tenant": "globex"}, headers=auditor).status_code
        == 403
    )
    assert httpx.get(f"{base}/api/verify", params={"tenant": "acme"}, headers=auditor).status_code == 403
    assert httpx.get(f"{base}/api/integrity-status", params={"tenant": "acme"}).status_code == 401

    context, page, base, errors = open_page(browser, receiver, ACME_AUDITOR)
    try:
        page.goto(base + "/compliance")
        # a placeholder at once, then the verdict
        page.wait_for_selector("#verify-panel:not([hidden]) #verify-status")
        page.wait_for_selector("#verify-status .status-ok", timeout=60_000)
        assert "Intact" in page.inner_text("#verify-status")

        # every count links to its events: the link's search finds exactly that many
        link = page.locator("#categories tr:has(th:text-is('Logins')) td a.count-link").first
        shown = int(link.inner_text().replace(",", ""))
        assert shown == 1
        link.click()
        page.wait_for_url(re.compile(r"action=login"))
        q = page.url
        assert "outcome=success" in q and "since=now-24h" in q and "tenant=acme" in q
        assert summary_total(page) == shown
        page.goto(base + "/compliance")
        page.wait_for_selector("#categories tr:has(th:text-is('Access to audit logs')) a.count-link")
        link = page.locator("#categories tr:has(th:text-is('Access to audit logs')) td a.count-link").nth(1)
        shown = int(link.inner_text().replace(",", ""))
        link.click()
        page.wait_for_url(re.compile(r"event_name=audit.audit_log"))
        assert summary_total(page) >= shown > 0  # this page's own reads may have joined them

        # the tenant's total links to all its events, the audit trail's included
        page.goto(base + "/compliance")
        total = page.locator("#compliance-summary a.count-link")
        stored = int(total.inner_text().split()[0].replace(",", ""))
        total.click()
        page.wait_for_url(re.compile(r"trail=1"))
        assert summary_total(page) >= stored > seeded.acme_count

        # an event's proof: verified in the browser, with its leaf index and checkpoint
        page.goto(f"{base}/events/{seeded.ids['login']}")
        page.wait_for_selector("#detail-proof .status-ok", timeout=60_000)
        proof = page.inner_text("#detail-proof")
        assert "Verified" in proof and "Leaf index" in proof and "otel-audit/acme/" in proof
        assert "tree size" in proof

        # rows outside the log: the tenant is not green, and says how many
        sql(
            store,
            "INSERT INTO {db}.audit_events SELECT * REPLACE (generateUUIDv4() AS id, '' AS chain_id, 0 AS seq)"
            " FROM (SELECT * FROM {db}.audit_events WHERE tenant_id = 'acme' LIMIT 3)",
        )
        page.goto(base + "/compliance")
        page.wait_for_selector("#verify-status .status-bad", timeout=60_000)
        assert "Damaged" in page.inner_text("#verify-status")
        assert "3 events are outside the tamper-evidence log" in page.inner_text("#verify-details")
        assert "3 outside the tamper-evidence log" in page.inner_text("#compliance-summary")
        unchained = store._query_arrow(
            Statement(
                f"SELECT toString(id) AS id FROM {store.database}.audit_events WHERE chain_id = '' LIMIT 1"
            )
        ).to_pylist()[0]["id"]
        page.goto(f"{base}/events/{unchained}")
        page.wait_for_selector("#detail-proof .status:not(.status-pending)", timeout=60_000)
        assert "Not verified" in page.inner_text("#detail-proof")
        assert "no verifiable log" in page.inner_text("#detail-proof")
        assert errors == []
    finally:
        context.close()


LONG_ID = "res-" + "0123456789abcdef" * 18 + "0123456789ab"  # 300 characters, no space to wrap at
LONG_NOTE = "x" * 10_000
LONG_BODY = " ".join(f"word{i}" for i in range(900))


def test_long_values_are_cut_with_show_all_copy_raw_json_and_word_diffs(browser, receiver_seeded):  # noqa: F811
    receiver, seeded = receiver_seeded
    event_id = "7d1f2e3a-0000-4000-8000-00000000abcd"
    changes = {
        "title": {"old": "Quarterly report draft", "new": "Quarterly summary draft"},
        "owner": {"old": "alice", "new": "alicia"},
        "body": {"old": LONG_BODY, "new": LONG_BODY.replace("word450 ", "changed450 ")},
    }
    record = log_record(
        audit_attrs(
            audit__event__id=event_id,
            audit__action="update",
            audit__resource__type="longdoc",
            audit__resource__id=LONG_ID,
            audit__changes=json.dumps(changes),
            app__note=LONG_NOTE,
        ),
        event_name="audit.longdoc.update",
    )
    assert (
        export(f"127.0.0.1:{receiver.grpc_port}", request([record])).partial_success.rejected_log_records == 0
    )
    context, page, base, errors = open_page(browser, receiver, ACME_AUDITOR)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        # a list row stays at most two lines high, its resource id cut
        page.goto(base + "/?resource_type=longdoc")
        assert summary_total(page) == 1
        row = page.locator("#events-body tr").first
        assert row.bounding_box()["height"] < 80
        assert "…" in row.inner_text() and LONG_ID not in row.inner_text()

        page.goto(f"{base}/events/{event_id}")
        page.wait_for_selector("#detail-body:not([hidden])")
        size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        assert size[0] <= 1440 and size[1] < 3000, size
        resource = page.locator("#detail-fields dd:has(.value-long)").first
        assert LONG_ID not in resource.inner_text()
        resource.locator(".value-toggle").click()
        assert LONG_ID in resource.inner_text()
        resource.locator(".value-copy").click()
        page.wait_for_selector("#detail-fields .value-copy[data-copied=yes]")
        assert page.evaluate("navigator.clipboard.readText()") == LONG_ID
        note = page.locator("#detail-attributes tr:has(th:has-text('app.note')) td")
        assert "Show all 10,000 characters" in note.inner_text() and len(note.inner_text()) < 500

        # the diff marks what changed inside each value
        title = page.locator("#detail-changes tr:has(th:has-text('title'))")
        assert title.locator("del").all_inner_texts() == ["report"]
        assert title.locator("ins").all_inner_texts() == ["summary"]
        owner = page.locator("#detail-changes tr:has(th:has-text('owner'))")
        assert owner.locator("del").all_inner_texts() == ["e"]
        assert owner.locator("ins").all_inner_texts() == ["ia"]
        body = page.locator("#detail-changes tr:has(th:has-text('body'))")
        assert body.locator("del").all_inner_texts() == ["word450"]
        assert body.locator("ins").all_inner_texts() == ["changed450"]
        # a long value: the change with its context, the rest cut until "Show all"
        assert body.locator(".diff-gap").count() == 4 and len(body.inner_text()) < 600
        body.locator(".diff-new .value-toggle").click()
        assert "word899" in body.locator(".diff-new").inner_text()
        assert body.locator("ins").all_inner_texts() == ["changed450"]

        # the raw JSON of the event
        page.click("#detail-raw summary")
        raw = json.loads(page.inner_text("#detail-raw .raw-json"))
        assert raw["id"] == event_id and raw["resource_id"] == LONG_ID

        # a hostile value in a diff stays text
        page.goto(f"{base}/events/{seeded.ids['xss']}")
        page.wait_for_selector("#detail-changes tr:has(th:has-text('title')) ins")
        title = page.inner_text("#detail-changes tr:has(th:has-text('title'))")
        assert "<script>window.__xss=1</script>" in title and '=HYPERLINK("http://evil.example","x")' in title
        assert page.evaluate("window.__xss") is None
        assert errors == []
    finally:
        context.close()


def test_export_shows_progress_can_be_cancelled_and_is_newest_first(browser, receiver_seeded, tmp_path):  # noqa: F811
    receiver, seeded = receiver_seeded
    now = dt.datetime.now(UTC)
    bulk = 12_000
    for start in range(0, bulk, 3_000):
        records = [
            log_record(
                audit_attrs(
                    audit__tenant__id="bulk", audit__action="read", enduser__id=f"u{i % 7}", note="n" * 200
                ),
                event_name="audit.doc.read",
                time_ns=int((now - dt.timedelta(seconds=i)).timestamp() * 1_000_000) * 1000,
            )
            for i in range(start, min(bulk, start + 3_000))
        ]
        answer = export(f"127.0.0.1:{receiver.grpc_port}", request(records, service_name="bulk"))
        assert answer.partial_success.rejected_log_records == 0
    context, page, base, errors = open_page(browser, receiver, ADMIN)
    try:
        page.on("dialog", lambda dialog: dialog.accept())
        downloads: list = []
        page.on("download", lambda d: downloads.append(d))
        page.goto(base + "/?tenant=bulk")
        assert summary_total(page) == bulk

        # a slow link (Chromium's own throttling): rows and bytes so far, then Cancel
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": 150_000, "uploadThroughput": 1_000_000},
        )
        page.click("#export-csv")
        deadline = dt.datetime.now(UTC) + dt.timedelta(seconds=60)
        while not re.match(r"[1-9][\d,]* of 12,000 rows · ", page.inner_text("#export-status")):
            assert dt.datetime.now(UTC) < deadline, page.inner_text("#export-status")
            page.wait_for_timeout(50)
        assert page.is_visible("#export-progress") and page.is_enabled("#export-cancel")
        page.click("#export-cancel")
        page.wait_for_selector("#export-status:has-text('Cancelled after')")
        cancelled = int(
            re.search(r"after ([\d,]+) rows", page.inner_text("#export-status")).group(1).replace(",", "")
        )
        assert 0 < cancelled < bulk
        page.wait_for_timeout(500)
        assert downloads == []

        # full speed: done with every row, saved under the server's name, newest first as on screen
        cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        with page.expect_download(timeout=60_000) as info:
            page.click("#export-jsonl")
        download = info.value
        assert re.fullmatch(r"audit-events-bulk-\d{8}T\d{6}Z\.jsonl", download.suggested_filename)
        page.wait_for_selector("#export-status:has-text('Done')")
        assert "12,000 rows" in page.inner_text("#export-status")
        path = tmp_path / "bulk.jsonl"
        download.save_as(path)
        assert path.stat().st_size > 4 * 1024 * 1024  # past the size at which the page moves chunks to a Blob
        times = [json.loads(line)["created_at"] for line in path.read_text().splitlines()]
        assert len(times) == bulk and times == sorted(times, reverse=True)
        shown = page.eval_on_selector_all(
            "#events-body tr td:first-child a", "links => links.map(a => a.title)"
        )
        assert times[: len(shown)] == shown
        assert errors == []
    finally:
        context.close()
