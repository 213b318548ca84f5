"""SPEC section 8 over real OTLP into real chDB: repeated filters, exclusions, prefixes, CIDR ranges,
relative times, the search's total and /api/stats (total, histogram, facets), all scoped like
/api/events."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

import httpx
import pytest
from conftest import start_receiver
from otlp_builders import audit_attrs, export, log_record, request

from receiver.filters import EventFilter, FilterError, Match, parse_filters

UTC = dt.timezone.utc
ADMIN = "admin-token-search-v2-0123456789"
ACME = "auditor-token-search-acme-0123"
TOKENS = [
    {"token": ADMIN, "role": "admin", "tenants": ["*"], "name": "root"},
    {"token": ACME, "role": "auditor", "tenants": ["acme"], "name": "ada"},
]
#: (tenant, user, action, ip, minutes before now, event name)
ROWS = [
    ("acme", "alice", "login", "203.0.113.5", 10, "audit.user.login"),
    ("acme", "alan", "read", "203.0.113.77", 20, "audit.document.read"),
    ("acme", "bob", "update", "198.51.100.2", 30, "audit.document.update"),
    ("acme", "bob", "delete", "", 60 * 30, "audit.document.delete"),
    ("acme", "carol", "read", "2001:db8::1", 60 * 24 * 3, "audit.document.read"),
    ("acme", "alice", "read", "not-an-ip", 60 * 24 * 10, "audit.document.read"),
    ("globex", "alice", "read", "203.0.113.9", 5, "audit.document.read"),
]


@pytest.fixture
def seeded(store):
    receiver = start_receiver(store, admin_tokens=TOKENS)
    now = dt.datetime.now(UTC)
    ids: list[str] = []
    records = []
    for tenant, user, action, ip, minutes, name in ROWS:
        event_id = str(uuid.uuid4())
        ids.append(event_id)
        attrs = audit_attrs(
            audit__event__id=event_id,
            audit__tenant__id=tenant,
            enduser__id=user,
            audit__action=action,
            client__address=ip or None,
        )
        when = now - dt.timedelta(minutes=minutes)
        records.append(log_record(attrs, event_name=name, time_ns=int(when.timestamp() * 1e6) * 1000))
    answer = export(f"127.0.0.1:{receiver.grpc_port}", request(records))
    assert answer.partial_success.rejected_log_records == 0
    base = f"http://127.0.0.1:{receiver.admin_port}"
    clients = {
        name: httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=30)
        for name, token in (("admin", ADMIN), ("acme", ACME))
    }
    yield store, ids, clients
    for client in clients.values():
        client.close()
    receiver.stop_listeners()


def test_value_forms_select_exactly(seeded):
    store, ids, _ = seeded

    def rows(**params) -> set[int]:
        flt = parse_filters({**params, "resource_type": ["!audit_log"]})
        return {ids.index(r["id"]) for r in store.search(flt, 1000)}

    assert rows(user=["alice", "bob"], tenant="acme") == {0, 2, 3, 5}
    assert rows(user="al*", tenant="acme") == {0, 1, 5}
    assert rows(user="!alice", tenant="acme") == {1, 2, 3, 4}
    assert rows(user=["!al*", "!carol"]) == {2, 3}
    assert rows(user=["al*", "!alan"]) == {0, 5, 6}
    assert rows(ip="203.0.113.0/24") == {0, 1, 6}
    assert rows(ip=["203.0.113.0/24", "!203.0.113.77"]) == {0, 6}
    assert rows(ip="!203.0.113.0/24", tenant="acme") == {2, 3, 4, 5}
    assert rows(ip="2001:db8::/32") == {4}
    assert rows(ip="203.0.113.5") == {0}
    assert rows(event_name="!audit.document.*") == {0}
    assert rows(action=["read", "login"], tenant="acme", user="!carol") == {0, 1, 5}
    assert rows(since="now-1h", tenant="acme") == {0, 1, 2}
    assert rows(since="now-7d", until="now-1h") == {3, 4}
    assert rows(until="now-7d") == {5}


def test_parse_errors_are_clear():
    with pytest.raises(FilterError, match="ip: '10.0.0.0/99'"):
        parse_filters({"ip": "10.0.0.0/99"})
    with pytest.raises(FilterError, match="'!' must be followed"):
        parse_filters({"user": "!"})
    with pytest.raises(FilterError, match="now-<N>"):
        parse_filters({"since": "now-7x"})
    with pytest.raises(FilterError, match="outside 1900-01-01"):
        parse_filters({"since": "0001-01-01"})
    with pytest.raises(FilterError, match="give it once"):
        parse_filters({"since": ["now-1h", "now-2h"]})
    now = dt.datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    flt = parse_filters({"since": "now-15m", "until": "now"}, now=now)
    assert (flt.since, flt.until) == (now - dt.timedelta(minutes=15), now)
    assert parse_filters({"tenant": ["a", "b"]}).tenant == Match(("a", "b"))
    assert EventFilter(tenant="acme").single_tenant == "acme"
    assert EventFilter(tenant=["acme", "b"]).single_tenant is None


def test_api_total_repeated_params_and_scope(seeded):
    _, ids, c = seeded
    answer = c["admin"].get(
        "/api/events",
        params=[("user", "alice"), ("user", "bob"), ("event_name", "!audit.audit_log.*"), ("limit", "2")],
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total"] == 5 and len(body["events"]) == 2 and body["next_cursor"]
    page2 = (
        c["admin"]
        .get(
            "/api/events",
            params=[
                ("user", "alice"),
                ("user", "bob"),
                ("event_name", "!audit.audit_log.*"),
                ("limit", "2"),
                ("cursor", body["next_cursor"]),
            ],
        )
        .json()
    )
    assert page2["total"] == 5
    # an auditor's total counts only its tenant, and naming another tenant is refused
    acme = c["acme"].get("/api/events", params={"user": "alice", "event_name": "!audit.audit_log.*"}).json()
    assert acme["total"] == 2 and {e["tenant_id"] for e in acme["events"]} == {"acme"}
    refused = c["acme"].get("/api/events", params=[("tenant", "acme"), ("tenant", "globex")])
    assert refused.status_code == 403 and "globex" in refused.json()["error"]
    # excluding another tenant is not asking for it
    assert c["acme"].get("/api/events", params={"tenant": "!globex"}).status_code == 200
    assert c["admin"].get("/api/events", params={"ip": "1.2.3.4/77"}).status_code == 400


def test_stats_total_histogram_facets(seeded):
    _, _, c = seeded
    params = {
        "tenant": "acme",
        "event_name": "!audit.audit_log.*",
        "since": "now-2d",
        "until": "now",
        "buckets": "48",
    }
    stats = c["admin"].get("/api/stats", params=params)
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert body["total"] == 4
    assert len(body["histogram"]) == 48 and sum(b["count"] for b in body["histogram"]) == 4
    # hour buckets over two days: the three recent events fall in the last bucket, the 30 h old one 30 back
    assert body["histogram"][-1]["count"] == 3 and body["histogram"][-31]["count"] == 1
    starts = [dt.datetime.fromisoformat(b["start"].replace("Z", "+00:00")) for b in body["histogram"]]
    assert all(round((b - a).total_seconds()) == 3600 for a, b in itertools.pairwise(starts))
    assert body["facets"]["user_id"] == [
        {"value": "bob", "count": 2},
        {"value": "alan", "count": 1},
        {"value": "alice", "count": 1},
    ]
    assert [f["value"] for f in body["facets"]["action"]] == ["delete", "login", "read", "update"]
    assert {f["value"] for f in body["facets"]["ip_address"]} == {
        "203.0.113.5",
        "203.0.113.77",
        "198.51.100.2",
        "",
    }
    assert set(body["facets"]) == {
        "action",
        "outcome",
        "user_id",
        "resource_type",
        "event_name",
        "ip_address",
    }
    # scoped like /api/events: an auditor sees its tenant only; another tenant is refused
    acme = c["acme"].get("/api/stats", params={"user": "alice", "event_name": "!audit.audit_log.*"}).json()
    assert acme["total"] == 2
    assert c["acme"].get("/api/stats", params={"tenant": "globex"}).status_code == 403
    # open range: the histogram spans the matching events themselves
    whole = c["admin"].get("/api/stats", params={"event_name": "!audit.audit_log.*", "buckets": "10"}).json()
    assert whole["total"] == 7 and sum(b["count"] for b in whole["histogram"]) == 7
    empty = c["admin"].get("/api/stats", params={"user": "nobody"}).json()
    assert empty["total"] == 0 and empty["histogram"] == [] and empty["facets"]["action"] == []
    assert c["admin"].get("/api/stats", params={"buckets": "0"}).status_code == 400
    assert c["admin"].get("/api/stats", params={"bogus": "1"}).status_code == 400
