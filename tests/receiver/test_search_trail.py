"""Issue 15 item 1: one search writes one audit-trail event per tenant, not one per page,
refresh or statistics call of the same search; a different search is recorded again."""

from __future__ import annotations

import httpx
from admin_seed import ACME_AUDITOR, ADMIN, ADMIN_TOKENS, seed
from conftest import start_receiver

from receiver.admin.search_trail import SearchMemo
from receiver.filters import EventFilter


def reads(store, user: str) -> list[dict]:
    return store.search(EventFilter(event_name="audit.audit_log.read", user=user), 1000)


def test_pages_refreshes_and_stats_of_one_search_are_one_trail_event(store):
    receiver = start_receiver(store, admin_tokens=ADMIN_TOKENS)
    seed(f"127.0.0.1:{receiver.grpc_port}")
    base = f"http://127.0.0.1:{receiver.admin_port}"
    acme = httpx.Client(base_url=base, headers={"authorization": f"Bearer {ACME_AUDITOR}"}, timeout=30)
    admin = httpx.Client(base_url=base, headers={"authorization": f"Bearer {ADMIN}"}, timeout=30)
    try:
        search = {"action": "read", "event_name": "!audit.audit_log.*"}
        first = acme.get("/api/events", params={**search, "limit": "10"}).json()
        assert first["total"] == 31 and first["next_cursor"]
        acme.get("/api/events", params={**search, "limit": "10", "cursor": first["next_cursor"]})
        acme.get("/api/events", params={**search, "limit": "10"})  # refresh
        acme.get("/api/stats", params={**search, "buckets": "20"})
        (event,) = reads(store, "ada.auditor")
        assert event["tenant_id"] == "acme" and event["attributes"]["audit.query.action"] == "read"
        # another search is another event
        acme.get("/api/events", params={"action": "login"})
        assert len(reads(store, "ada.auditor")) == 2
        # an all-tenant search: a later page reaching a tenant not yet recorded records that one
        everything = admin.get("/api/events", params={"limit": "5", "tenant": "globex"}).json()
        assert everything["total"] == 2
        assert {e["tenant_id"] for e in reads(store, "root.admin")} == {"globex"}
        admin.get("/api/events", params={"limit": "5", "tenant": "globex"})
        assert len(reads(store, "root.admin")) == 1
    finally:
        acme.close()
        admin.close()
        receiver.stop_listeners()


def test_the_memory_forgets_after_its_ttl_and_on_failure():
    from receiver.admin.access import Access

    now = [0.0]
    memo = SearchMemo(ttl=60, clock=lambda: now[0])
    who = Access(name="a", role="auditor", tenants=("acme",))
    key = memo.key(who, {"user": "bob", "cursor": "x", "limit": "10"})
    assert key == memo.key(who, {"user": "bob"})
    assert memo.claim(key, ["acme"]) == ("acme",)
    assert memo.claim(key, ["acme"]) == ()
    assert memo.claim(key, ["acme", "globex"]) == ("globex",)
    memo.release(key, ["globex"])
    assert memo.claim(key, ["globex"]) == ("globex",)
    now[0] = 61
    assert memo.claim(key, ["acme"]) == ("acme",)
