"""What the browser tests share: Debian's Chromium driven by Playwright (one browser per test
module), the skip when it is not installed, signing in to the admin UI, reading the results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: ``pytestmark = needs_chromium`` in a module that drives the browser
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def sign_in_page(page: Any, base: str, token: str, path: str = "/", ready: str = "#nav:not([hidden])") -> Any:
    """Open ``path``, sign in with ``token`` and wait for ``ready``."""
    page.goto(base + path)
    page.fill("#signin-token", token)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector(ready)
    return page


def sign_in(
    browser: Any, admin_port: int, token: str, ready: str = "#nav:not([hidden])", **context_options: Any
) -> tuple[Any, Any, str, list[str]]:
    """A new 1440×900 context signed in: (context, page, base URL, page errors as they come)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, **context_options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    base = f"http://127.0.0.1:{admin_port}"
    sign_in_page(page, base, token, ready=ready)
    return context, page, base, errors


def visible_rows(page: Any) -> list[list[str]]:
    """The result table's cells, once the search has answered."""
    page.wait_for_selector("#results-summary:not(:text('Searching…'))")
    return [
        [cell.inner_text() for cell in row.query_selector_all("td")]
        for row in page.query_selector_all("#events-body tr")
    ]
