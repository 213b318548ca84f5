"""Bad input and store outages on the admin API's read paths (issue 13, items 8 and 9):
out-of-range times are 400 with a JSON reason (never the engine's 500), and a store outage
is a 503 that names a reference id, never the store's file paths (those go to the log)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from admin_seed import ADMIN, ADMIN_TOKENS
from conftest import start_receiver

from receiver.server import Receiver
from receiver.store.base import StoreUnavailable
from receiver.store.chdb_store import ChdbStore

OUTAGE = "cannot open chDB store at /srv/secret-store/data: Code: 76. DB::Exception: Cannot lock file /srv/secret-store/data/status"


@pytest.fixture
def served(store: ChdbStore) -> Iterator[tuple[Receiver, httpx.Client]]:
    receiver = start_receiver(store, admin_tokens=ADMIN_TOKENS)
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{receiver.admin_port}",
        headers={"authorization": f"Bearer {ADMIN}"},
        timeout=30,
    )
    yield receiver, client
    client.close()
    receiver.stop_listeners()


@pytest.mark.parametrize(
    "query",
    [
        "since=0001-01-01",
        "until=0001-01-01T00:00:00Z",
        "since=1899-12-31T23:59:59Z",
        "until=2300-01-01",
        "since=9999-12-31",
    ],
)
def test_times_outside_the_engines_range_are_400(served, query):
    _, client = served
    for path in ("/api/events", "/api/export.csv", "/api/verify"):
        answer = client.get(f"{path}?{query}")
        assert answer.status_code == 400, (path, answer.status_code, answer.text[:200])
        assert "1900" in answer.json()["error"], answer.text


def test_times_inside_the_range_are_answered(served):
    _, client = served
    assert client.get("/api/events?since=1900-01-01&until=2299-12-31").status_code == 200


def test_an_engine_parameter_error_is_400_not_500(served, monkeypatch):
    """Whatever slips past validation, the engine's own bad-argument error is the client's
    fault: 400 with a JSON reason (the range check is lifted here to let year 1 reach chDB)."""
    from receiver import filters

    monkeypatch.setattr(filters, "MIN_TIME", filters.MIN_TIME.replace(year=1))
    _, client = served
    answer = client.get("/api/events?since=0001-01-01")
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["error"].startswith("bad parameter")


def _outage(*_: Any, **__: Any) -> Any:
    raise StoreUnavailable(OUTAGE)


def test_a_store_outage_hides_the_store_paths(served, store, monkeypatch, caplog):
    _, client = served
    for name in ("search", "get_event", "compliance", "tenants"):
        if hasattr(store, name):
            monkeypatch.setattr(store, name, _outage)
    caplog.set_level(logging.ERROR)
    for path in (
        "/api/events",
        "/api/events/6f1c2b9e-8a55-4b8e-9d7e-0f6d2a6f3c11",
        "/api/compliance?tenant=acme",
        "/api/tenants",
    ):
        answer = client.get(path)
        assert answer.status_code == 503, (path, answer.text)
        body = answer.json()
        assert "/srv" not in answer.text and "secret-store" not in answer.text, (path, answer.text)
        assert body["error"].startswith("store unavailable") and body["reference"], body
        # the detail is in the server's log, findable by the reference
        logged = [r.getMessage() for r in caplog.records if body["reference"] in r.getMessage()]
        assert logged and "secret-store" in logged[0] + str(caplog.text)


def test_health_does_not_show_store_paths(served, store, monkeypatch):
    receiver, client = served
    monkeypatch.setattr(store, "ping", _outage)
    answer = httpx.get(f"http://127.0.0.1:{receiver.admin_port}/healthz")
    assert answer.status_code == 503 and answer.json()["status"] == "unavailable"
    assert "secret-store" not in answer.text and answer.json()["reference"]
