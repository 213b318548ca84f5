"""Issue 13 item 13: bidirectional controls in event fields are flagged at ingest
(``otel_audit.flags``), shown as visible marks in the admin UI (real Chromium: the detail header
still reads left to right) and in ``otel-audit query``'s table, and never obeyed."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from admin_seed import ACME_AUDITOR, ADMIN_TOKENS
from browser_support import browser, needs_chromium  # noqa: F401 - the module's Chromium fixture
from conftest import REPO, start_receiver
from otlp_builders import audit_attrs, export, log_record, request

from receiver import pipeline
from receiver.pipeline.auth import OPEN

RLO, PDF, LRI, ALM = "\u202e", "\u202c", "\u2066", "\u061c"


def attributes_of(records) -> list[dict[str, str]]:
    result = pipeline.run(request(records), OPEN, lambda _t: 30)
    assert result.rejected == 0, result.reasons
    return [dict(a) for a in result.table.column("attributes").to_pylist()]


def test_the_pipeline_flags_a_control_in_any_field():
    plain = log_record(audit_attrs(enduser__id="ünïcode ok", ticket="INC-7"))
    flagged = [
        log_record(audit_attrs(audit__resource__id=f"doc{RLO}")),
        log_record(audit_attrs(enduser__id=f"{LRI}alice")),
        log_record(audit_attrs(audit__tenant__id=f"acme{ALM}")),
        log_record(audit_attrs(ticket=f"INC{PDF}")),
        log_record(audit_attrs(**{f"key{RLO}": "v"})),
        log_record(audit_attrs(audit__changes='{"name": {"old": "a", "new": "\\u202eb"}}')),
        log_record(audit_attrs(), body="reason \u200f"),
        log_record(audit_attrs(otel_audit__flags="none", enduser__id=f"x{RLO}")),
    ]
    spoofed = log_record(audit_attrs(otel_audit__flags="bidi_control"))
    got = attributes_of([plain, *flagged, spoofed])
    assert "otel_audit.flags" not in got[0] and got[0]["ticket"] == "INC-7"
    for attrs in got[1:-1]:
        assert attrs["otel_audit.flags"] == "bidi_control", attrs
    assert got[-1] == {"otel_audit.flags": "bidi_control"}  # a client's claim is kept as sent


def test_the_query_table_shows_controls_as_marks(serve_process):
    serve = serve_process().start()
    records = [
        log_record(
            audit_attrs(
                audit__tenant__id="acme",
                enduser__id=f"{RLO}mallory",
                audit__resource__id="[bold]x[/bold]\x1b[2J",
            )
        ),
    ]
    assert export(serve.grpc_endpoint, request(records)).partial_success.rejected_log_records == 0
    done = subprocess.run(
        [sys.executable, "-m", "receiver.cli", "query", "--server", serve.admin_url, "--tenant", "acme"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "COLUMNS": "400", "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "⟨U+202E⟩mallory" in done.stdout
    assert "[bold]x[/bold]⟨U+001B⟩[2J" in done.stdout  # no markup, no escape sequence
    assert RLO not in done.stdout and "\x1b[2J" not in done.stdout


@needs_chromium
def test_the_detail_header_reads_left_to_right_in_chromium(store, browser):  # noqa: F811
    receiver = start_receiver(store, admin_tokens=ADMIN_TOKENS)
    event_id = str(uuid.uuid4())
    record = log_record(
        audit_attrs(
            audit__event__id=event_id,
            audit__tenant__id="acme",
            enduser__id="alice",
            audit__resource__type="document",
            audit__resource__id=f"doc-7{RLO}",  # an unterminated right-to-left override
        )
    )
    assert (
        export(f"127.0.0.1:{receiver.grpc_port}", request([record])).partial_success.rejected_log_records == 0
    )
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    base = f"http://127.0.0.1:{receiver.admin_port}"
    try:
        page.goto(base + "/")
        page.fill("#signin-token", ACME_AUDITOR)
        page.click("#signin-form button[type=submit]")
        page.wait_for_selector("#events-body tr")
        page.goto(f"{base}/events/{event_id}")
        page.wait_for_selector("#detail-body:not([hidden])")
        # where each character of "tenant acme" is drawn: left to right, in order
        lefts = page.evaluate(
            """() => {
              const root = document.getElementById("detail-subtitle");
              const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
              const chars = [];
              for (let n = walker.nextNode(); n; n = walker.nextNode())
                for (let i = 0; i < n.data.length; i++) chars.push([n, i]);
              const text = chars.map(([n, i]) => n.data[i]).join("");
              const start = text.lastIndexOf("tenant acme");
              if (start < 0) return null;
              return chars.slice(start, start + "tenant acme".length).map(([n, i]) => {
                const range = document.createRange();
                range.setStart(n, i);
                range.setEnd(n, i + 1);
                return range.getBoundingClientRect().left;
              });
            }"""
        )
        assert lefts is not None
        assert all(a < b for a, b in zip(lefts, lefts[1:], strict=False)), lefts
        subtitle = page.inner_text("#detail-subtitle")
        assert "doc-7⟨U+202E⟩" in subtitle and RLO not in subtitle
        assert page.is_visible("#detail-bidi")
        assert "doc-7⟨U+202E⟩" in page.inner_text("#detail-fields")
        assert "otel_audit.flags\tbidi_control" in page.inner_text("#detail-attributes")
        # the search table shows the mark too
        page.goto(f"{base}/?resource_id=doc-7{RLO}")
        page.wait_for_selector("#events-body tr")
        assert "doc-7⟨U+202E⟩" in page.inner_text("#events-body")
        assert errors == []
    finally:
        context.close()
        receiver.stop_listeners()
