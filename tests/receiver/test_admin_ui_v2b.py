"""Admin UI v2, second part (issue 15 items 5, 6, 7, 9's progress and order, and the relative
`until` histogram bug), in real Chromium against a real receiver."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from admin_seed import ACME_AUDITOR, ADMIN, ADMIN_TOKENS, seed
from conftest import start_receiver
from test_admin_browser import CHROMIUM, browser, visible_rows  # noqa: F401 - the browser fixture
from test_admin_ui_v2 import open_page, summary_total

pytestmark = pytest.mark.skipif(not __import__("os").path.exists(CHROMIUM), reason="no Debian chromium")
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
