"""Issue 13 item 11: ``/metrics`` is not open to the network by default (config ``metrics.auth``).
A remote peer cannot be produced on loopback, so the admin app is driven through httpx's ASGI
transport with a remote client address; the loopback case also runs over a real socket."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from conftest import start_receiver

from receiver.admin.access import AdminAuthenticator
from receiver.admin.api import build_admin_app
from receiver.config import AdminToken, MetricsAccess
from receiver.telemetry import ReceiverMetrics

ADMIN = "admin-token-0123456789"
SCRAPE = "scrape-token-0123456789"


def get_metrics(store, access: MetricsAccess | None, peer: str, token: str | None = None) -> int:
    tokens = [AdminToken(token=ADMIN, role="auditor", tenants=("*",))]
    extra = {} if access is None else {"metrics_access": access}  # None: what serve did by default
    app = build_admin_app(store, AdminAuthenticator(tokens), ReceiverMetrics(), **extra)
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def go() -> int:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8318") as client:
            return (await client.get("/metrics", headers=headers)).status_code

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("access", "peer", "token", "status"),
    [
        (None, "203.0.113.7", None, 401),  # the default: same host only...
        (None, "203.0.113.7", ADMIN, 200),  # ...or an admin token
        (None, "127.0.0.1", None, 200),
        (None, "::1", None, 200),
        (MetricsAccess(token=SCRAPE), "203.0.113.7", SCRAPE, 200),
        (MetricsAccess(token=SCRAPE), "203.0.113.7", "wrong-token-0123456789", 401),
        (MetricsAccess(auth="token", token=SCRAPE), "127.0.0.1", None, 401),
        (MetricsAccess(auth="token", token=SCRAPE), "127.0.0.1", SCRAPE, 200),
        (MetricsAccess(auth="none"), "203.0.113.7", None, 200),
    ],
)
def test_metrics_access(store, access, peer, token, status):
    assert get_metrics(store, access, peer, token) == status


def test_metrics_config_reaches_the_served_admin_listener(store):
    r = start_receiver(store, metrics={"auth": "token", "token": SCRAPE})
    try:
        url = f"http://127.0.0.1:{r.admin_port}/metrics"
        assert httpx.get(url, timeout=10).status_code == 401
        ok = httpx.get(url, headers={"Authorization": f"Bearer {SCRAPE}"}, timeout=10)
        assert ok.status_code == 200 and "otel_audit" in ok.text
    finally:
        r.stop_listeners()
