"""`make screenshots`: the admin UI's main views, desktop and phone, light and dark, into
docs/screenshots/. Starts a receiver on a temporary store and free loopback ports, sends it the
demo's traffic (receiver/demo) through the instrumented sample app, and drives Debian's Chromium
through Playwright. Run: .venv/bin/python tests/screenshots.py [--out DIR] [--rounds N]"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
TOKEN = "screenshot-admin-token-0123456789"
SIZES = {"desktop": {"width": 1440, "height": 900}, "mobile": {"width": 390, "height": 844}}


def start(data: Path, rounds: int):
    import otel_audit
    from receiver.config import load_config
    from receiver.demo.run import _serve_app
    from receiver.demo.sample_app import build_app
    from receiver.demo.traffic import run_traffic
    from receiver.filters import EventFilter
    from receiver.server import Receiver

    config = load_config(
        None,
        store=f"chdb://{data / 'store'}",
        grpc_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
        admin_listen="127.0.0.1:0",
        admin_tokens=[{"token": TOKEN, "role": "admin", "tenants": ["*"], "name": "dana.admin"}],
    )
    receiver = Receiver(config)
    receiver.start()
    app = build_app(
        endpoint=f"http://127.0.0.1:{receiver.grpc_port}",
        service_name="demo-docs",
        spool_dir=str(data / "spool"),
    )
    server, port = _serve_app(app)
    summary = run_traffic(f"http://127.0.0.1:{port}", n_rounds=rounds, seed=42)
    otel_audit.force_flush()
    expected = int(summary.get("events", 0))
    deadline = time.monotonic() + 30
    assert receiver.store is not None
    while receiver.store.count(EventFilter()) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        otel_audit.force_flush()
    server.should_exit = True  # type: ignore[attr-defined]
    return receiver


def shoot(base: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        for scheme in ("light", "dark"):
            for size, viewport in SIZES.items():
                context = browser.new_context(viewport=viewport, color_scheme=scheme, device_scale_factor=1)
                page = context.new_page()
                page.goto(base + "/")
                page.fill("#signin-token", TOKEN)
                page.click("#signin-form button[type=submit]")
                page.wait_for_selector("#events-body tr")
                page.wait_for_selector("#results-summary:not(:text('Searching…'))")
                page.wait_for_selector("#stats:not([hidden])")
                views = {"search": None}
                link = page.get_attribute("#events-body tr:has(td:text('update')) a", "href")
                views["detail"] = link or page.get_attribute("#events-body tr a", "href")
                views["compliance"] = "/compliance?tenant=acme"
                views["alerts"] = "/alerts"
                for name, path in views.items():
                    if path:
                        page.goto(base + path)
                    ready = {
                        "search": "#events-body tr",
                        "detail": "#detail-body:not([hidden])",
                        "compliance": "#compliance-body:not([hidden])",
                        "alerts": "#view-alerts:not([hidden])",
                    }[name]
                    page.wait_for_selector(ready)
                    page.wait_for_timeout(300)
                    shot = out / f"{name}-{size}-{scheme}.png"
                    page.screenshot(path=str(shot), full_page=size == "mobile")  # a phone scrolls
                    written.append(shot)
                context.close()
        browser.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    parser.add_argument("--rounds", type=int, default=2, help="rounds of demo traffic (default 2)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"screenshots: {CHROMIUM} not found (apt-get install chromium)", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="otel-audit-shots-") as tmp:
        receiver = start(Path(tmp), args.rounds)
        try:
            written = shoot(f"http://127.0.0.1:{receiver.admin_port}", out)
        finally:
            receiver.stop()
    for path in written:
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
