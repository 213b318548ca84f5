"""The admin API over a known data set sent through real OTLP/gRPC into real chDB: every filter,
keyset pages under concurrent inserts, tenant isolation on every route, 400s, the audit trail
of reads and exports, and the exact CSV / JSON lines / Parquet content."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import httpx
import pyarrow.parquet as pq
import pytest
from admin_seed import (
    ACME_AUDITOR,
    ADMIN,
    ADMIN_TOKENS,
    FORMULA,
    GLOBEX_AUDITOR,
    XSS_REASON,
    XSS_RESOURCE,
    XSS_USER,
    seed,
)
from conftest import start_receiver
from otlp_builders import audit_attrs, export, log_record, request

from receiver.filters import Cursor, EventFilter
from receiver.formats import CSV_HEADER, csv_lines
from receiver.model import CSV_COLUMNS

API_ROUTES = (
    "/api/me",
    "/api/tenants",
    "/api/events",
    "/api/events/00000000-0000-0000-0000-000000000001",
    "/api/compliance?tenant=acme",
    "/api/export.csv",
    "/api/export.jsonl",
    "/api/export.parquet",
)


@pytest.fixture
def admin(store):
    receiver = start_receiver(store, admin_tokens=ADMIN_TOKENS)
    seeded = seed(f"127.0.0.1:{receiver.grpc_port}")
    base = f"http://127.0.0.1:{receiver.admin_port}"
    clients = {
        name: httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=30)
        for name, token in (("acme", ACME_AUDITOR), ("globex", GLOBEX_AUDITOR), ("admin", ADMIN))
    }
    clients["anonymous"] = httpx.Client(base_url=base, timeout=30)
    yield receiver, seeded, clients
    for client in clients.values():
        client.close()
    receiver.stop_listeners()


def data_events(client: httpx.Client, **params: str) -> list[dict]:
    """Matching events without the audit trail's own (audit.audit_log.*) events."""
    answer = client.get("/api/events", params={"limit": "1000", **params})
    assert answer.status_code == 200, answer.text
    return [e for e in answer.json()["events"] if e["resource_type"] != "audit_log"]


def trail(store, **filters: str) -> list[dict]:
    return store.search(EventFilter(resource_type="audit_log", **filters), 1000)


def test_every_filter_selects_exactly_its_events(admin):
    _, s, c = admin
    ids = s.ids
    acme = c["acme"]

    def found(**params: str) -> set[str]:
        return {e["id"] for e in data_events(acme, **params)}

    assert len(found()) == s.acme_count
    assert found(user="alice") == {ids["login"], ids["logout"]}
    assert found(action="grant") == {ids["grant"]}
    assert found(outcome="failure") == {ids["failed_login"]}
    assert found(resource_type="invoice") == {ids["update"]}
    assert found(resource_id="inv-7") == {ids["update"]}
    assert found(ip="198.51.100.7") == {ids["failed_login"]}
    assert found(event_name="audit.user.logout") == {ids["logout"]}
    assert found(q="REFUND") == {ids["update"]}  # reason, case-insensitive
    assert found(q="paid") == {ids["update"]}  # inside changes
    assert found(q="INC-7") == {ids["update"]}  # attribute value
    since = (s.base + dt.timedelta(minutes=2)).isoformat()
    until = (s.base + dt.timedelta(minutes=4)).isoformat().replace("+00:00", "Z")
    assert found(since=since, until=until) == {ids["update"], ids["grant"]}  # since in, until out
    assert found(user="alice", action="logout") == {ids["logout"]}
    # the admin sees both tenants; the tenant filter narrows
    assert {e["tenant_id"] for e in data_events(c["admin"])} == {"acme", "globex"}
    assert found(tenant="acme") == found()
    assert {e["id"] for e in data_events(c["admin"], tenant="globex")} == {
        ids["globex_read"],
        ids["globex_delete"],
    }
    # newest first
    times = [e["created_at"] for e in data_events(acme)]
    assert times == sorted(times, reverse=True)


def test_keyset_pages_are_stable_while_events_arrive(admin):
    receiver, s, c = admin
    endpoint = f"127.0.0.1:{receiver.grpc_port}"
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "7", "resource_type": "document", **({"cursor": cursor} if cursor else {})}
        page = c["acme"].get("/api/events", params=params).json()
        seen += [e["id"] for e in page["events"]]
        pages += 1
        # inserts between pages: newer than everything, and one inside the range already paged
        inside = s.base + dt.timedelta(minutes=20, seconds=30)
        export(
            endpoint,
            request(
                [
                    log_record(audit_attrs(audit__resource__type="document")),
                    log_record(
                        audit_attrs(audit__resource__type="document"),
                        time_ns=int(inside.timestamp()) * 10**9 + pages,
                    ),
                ]
            ),
        )
        cursor = page["next_cursor"]
        if not cursor:
            break
    expected = [s.ids["formula"], s.ids["xss"]] + [s.ids[f"bulk{i}"] for i in range(30)]
    originals = [i for i in seen if i in set(expected)]
    assert sorted(originals) == sorted(expected) and len(originals) == len(set(originals))
    assert len(seen) == len(set(seen))  # no event on two pages
    assert pages >= 5


def test_a_token_never_sees_another_tenants_rows_on_any_route(admin, store):
    _, s, c = admin
    g = c["globex"]
    acme_id = s.ids["update"]
    assert g.get("/api/me").json() == {
        "name": "gus.auditor",
        "role": "auditor",
        "tenants": ["globex"],
        "open": False,
    }
    assert g.get("/api/tenants").json() == {"tenants": ["globex"]}
    assert {e["tenant_id"] for e in g.get("/api/events").json()["events"]} == {"globex"}
    for route in ("/api/events", "/api/export.csv", "/api/export.jsonl", "/api/export.parquet"):
        refused = g.get(route, params={"tenant": "acme"})
        assert refused.status_code == 403, route
        assert refused.json() == {"error": "tenant 'acme' is not visible to this token"}
    assert g.get(f"/api/events/{acme_id}").status_code == 404
    assert c["acme"].get(f"/api/events/{acme_id}").json()["id"] == acme_id
    assert g.get("/api/compliance", params={"tenant": "acme"}).status_code == 403
    # filters that match only acme rows give nothing, never acme data
    assert g.get("/api/events", params={"user": "bob"}).json()["events"] == []
    assert g.get("/api/events", params={"q": "refund"}).json()["events"] == []
    # a cursor made from an acme row still pages within globex
    acme_row = c["acme"].get(f"/api/events/{acme_id}").json()
    created = dt.datetime.fromisoformat(acme_row["created_at"].replace("Z", "+00:00"))
    cursor = Cursor(created + dt.timedelta(days=1), acme_id).encode()
    paged = g.get("/api/events", params={"cursor": cursor}).json()["events"]
    assert paged and {e["tenant_id"] for e in paged} == {"globex"}
    # every export of the globex token holds globex rows only
    rows = list(csv.DictReader(io.StringIO(g.get("/api/export.csv").text)))
    assert {r["tenant_id"] for r in rows} == {"globex"}
    lines = [json.loads(line) for line in g.get("/api/export.jsonl").text.splitlines()]
    assert {e["tenant_id"] for e in lines} == {"globex"}
    table = pq.read_table(io.BytesIO(g.get("/api/export.parquet").content))
    assert set(table.column("tenant_id").to_pylist()) == {"globex"}
    # a download ticket carries its token's scope, and only once
    ticket = g.post("/api/export-tickets").json()["ticket"]
    anonymous = c["anonymous"]
    by_ticket = anonymous.get("/api/export.csv", params={"ticket": ticket, "tenant": "acme"})
    assert by_ticket.status_code == 403
    assert anonymous.get("/api/export.csv", params={"ticket": ticket}).status_code == 401  # used up
    # no token, a wrong token: 401 with a JSON reason, on every route
    wrong = httpx.Client(
        base_url=str(g.base_url), headers={"authorization": "Bearer not-a-token-at-all-1234"}
    )
    for route in API_ROUTES:
        for client in (anonymous, wrong):
            answer = client.get(route)
            assert answer.status_code == 401, route
            assert "token" in answer.json()["error"]
    wrong.close()
    assert anonymous.post("/api/export-tickets").status_code == 401
    # the refused attempts are on record, as denied reads/exports by the token's name
    denied = trail(store, tenant="globex", outcome="denied")
    assert {e["action"] for e in denied} == {"read", "export"}
    assert {e["user_id"] for e in denied} == {"gus.auditor"}
    assert all(e["attributes"]["audit.query.tenant"] == "acme" for e in denied)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (
            {"since": "last tuesday"},
            "since: 'last tuesday' is not an ISO 8601 date or time, nor now / now-<N><s|m|h|d|w>",
        ),
        (
            {"until": "2026-13-01"},
            "until: '2026-13-01' is not an ISO 8601 date or time, nor now / now-<N><s|m|h|d|w>",
        ),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "since must be before until"),
        ({"limit": "0"}, "limit: must be between 1 and 1000"),
        ({"limit": "1001"}, "limit: must be between 1 and 1000"),
        ({"limit": "ten"}, "limit: 'ten' is not a whole number"),
        ({"colour": "red"}, "unknown parameter(s): colour"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor: not a cursor this server issued"),
        ({"user": "a\x00b"}, "user: contains a NUL character"),
    ],
)
def test_bad_input_is_a_400_with_a_json_reason(admin, params, reason):
    _, _, c = admin
    answer = c["acme"].get("/api/events", params=params)
    assert (answer.status_code, answer.json()) == (400, {"error": reason})
    if "limit" not in params and "cursor" not in params:
        exported = c["acme"].get("/api/export.csv", params=params)
        assert (exported.status_code, exported.json()) == (400, {"error": reason})


def test_bad_event_id_and_compliance_parameters(admin):
    _, _, c = admin
    assert c["acme"].get("/api/events/not-a-uuid").json() == {"error": "event id is not a UUID"}
    assert c["admin"].get("/api/compliance").status_code == 400  # which tenant?
    assert c["acme"].get("/api/compliance", params={"x": "1"}).status_code == 400


def test_reads_and_exports_are_audited_through_the_pipeline(admin, store):
    _, s, c = admin
    acme = c["acme"]
    acme.get("/api/events", params={"user": "alice", "limit": "5"}, headers={"user-agent": "pytest-ua"})
    acme.get(f"/api/events/{s.ids['update']}")
    acme.get("/api/export.csv", params={"action": "login"})
    c["admin"].get("/api/export.jsonl", params={"resource_type": "payment"})
    reads = trail(store, event_name="audit.audit_log.read", tenant="acme")
    search = next(e for e in reads if e["resource_id"] == "audit_events")
    assert search["user_id"] == "ada.auditor" and search["action"] == "read"
    assert search["attributes"]["audit.query.user"] == "alice"
    assert search["attributes"]["audit.result.count"] == "2"
    assert search["user_agent"] == "pytest-ua" and search["ip_address"] == "127.0.0.1"
    assert (search["http_method"], search["http_route"], search["http_status"]) == ("GET", "/api/events", 200)
    assert search["service_name"] == "otel-audit" and search["outcome"] == "success"
    view = next(e for e in reads if e["resource_id"] == s.ids["update"])
    assert view["http_route"] == "/api/events/{event_id}"
    (exported,) = trail(store, event_name="audit.audit_log.export", tenant="acme")
    assert exported["action"] == "export" and exported["user_id"] == "ada.auditor"
    assert exported["attributes"]["audit.export.format"] == "csv"
    assert exported["attributes"]["audit.result.count"] == "2"
    # an all-tenant token's export is recorded under the tenants it read
    (admin_export,) = trail(store, event_name="audit.audit_log.export", tenant="globex")
    assert admin_export["user_id"] == "root.admin"
    assert trail(store, event_name="audit.audit_log.export", user="root.admin", tenant="acme") == []
    # stored like any event: retention and ingest time set by the pipeline
    assert admin_export["received_at"] and store.count(EventFilter(resource_type="audit_log")) >= 4


def test_an_access_that_cannot_be_recorded_is_refused(admin):
    receiver, _, c = admin
    receiver._writer.close()  # the group commit is gone: nothing can be made durable
    answer = c["acme"].get("/api/events")
    assert answer.status_code == 503
    assert "cannot be recorded in the audit log" in answer.json()["error"]
    assert c["acme"].get("/api/export.csv").status_code == 503


def test_csv_export_is_the_spec_csv_of_the_known_data(admin):
    _, s, c = admin
    answer = c["acme"].get("/api/export.csv", params={"resource_type": "document", "q": "window"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    # named after the filters and the auditor's only tenant (issue 15 item 9), not "all"
    assert answer.headers["content-disposition"].startswith(
        'attachment; filename="audit-events-acme-q-window-resource_type-document-'
    )
    assert answer.headers["x-total-count"] == "1"
    assert answer.content.startswith(CSV_HEADER)
    (row,) = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(row) == list(CSV_COLUMNS)
    assert row["id"] == s.ids["xss"]
    assert row["user_id"] == XSS_USER and row["resource_id"] == XSS_RESOURCE and row["reason"] == XSS_REASON
    assert json.loads(row["changes"]) == {"title": {"old": XSS_REASON, "new": FORMULA}}
    assert row["created_at"] == (s.base + dt.timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    assert row["received_at"].endswith("Z") and len(row["received_at"]) == 27
    assert row["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    # formula injection: cells starting with = + - @ get a leading quote
    formula = list(
        csv.DictReader(io.StringIO(c["acme"].get("/api/export.csv", params={"user": "+dave"}).text))
    )
    assert (formula[0]["user_id"], formula[0]["resource_id"], formula[0]["reason"]) == (
        "'+dave",
        "'@SUM(A1:A9)",
        "'-2+3",
    )
    # the engine-made CSV is byte for byte what formats.csv_lines makes of the API's rows
    rows = data_events(c["acme"])
    rows.sort(key=lambda e: (e["tenant_id"], e["created_at"], e["id"]), reverse=True)  # newest first
    ids = ",".join(e["id"] for e in rows)
    exported = c["acme"].get(
        "/api/export.csv",
        params={"since": s.base.isoformat(), "until": (s.base + dt.timedelta(hours=1)).isoformat()},
    )
    assert exported.text == "".join(csv_lines(rows)), ids


def test_jsonl_and_parquet_exports_hold_the_api_events(admin):
    _, s, c = admin
    params = {"until": (s.base + dt.timedelta(hours=1)).isoformat()}
    api_events = {e["id"]: e for e in data_events(c["admin"], **params)}
    answer = c["admin"].get("/api/export.jsonl", params=params)
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert {e["id"]: e for e in lines} == api_events
    assert [(e["tenant_id"], e["created_at"]) for e in lines] == sorted(
        ((e["tenant_id"], e["created_at"]) for e in lines), reverse=True
    )
    xss = next(e for e in lines if e["id"] == s.ids["xss"])
    assert xss["changes"] == {"title": {"old": XSS_REASON, "new": FORMULA}} and xss["attributes"] == {
        "note": "<b>not bold</b>"
    }
    table = pq.read_table(io.BytesIO(c["admin"].get("/api/export.parquet", params=params).content))
    assert sorted(table.column("id").to_pylist()) == sorted(api_events)
    first = table.slice(0, 1).to_pylist()[0]
    assert first["created_at"].isoformat().startswith(api_events[first["id"]]["created_at"][:19])
    empty = c["admin"].get("/api/export.parquet", params={"user": "nobody"})
    assert pq.read_table(io.BytesIO(empty.content)).num_rows == 0
    assert c["admin"].get("/api/export.jsonl", params={"user": "nobody"}).content == b""


def test_compliance_summary_counts_categories_and_field_completeness(admin):
    _, _, c = admin
    c["acme"].get("/api/events")  # one access to the audit log
    report = c["acme"].get("/api/compliance").json()  # one-tenant token: its tenant
    assert report["tenant"] == "acme"
    cats = {cat["key"]: cat for cat in report["categories"]}
    assert (cats["logins"]["last_24h"], cats["failed_logins"]["last_24h"], cats["logouts"]["last_30d"]) == (
        1,
        1,
        1,
    )
    assert cats["permission_changes"]["last_24h"] == 1 and cats["modifications"]["last_24h"] == 2
    assert cats["sensitive_reads"]["last_24h"] == 31 and cats["admin_actions"]["last_30d"] == 0
    assert cats["admin_actions"]["last_seen"] is None
    assert cats["audit_log_access"]["last_24h"] == 1  # recorded after it answers: not this view
    fields = {f["key"]: f for f in report["fields"]}
    assert fields["user"]["missing"] == 1  # the anonymous failed login
    assert fields["time"]["complete"] and fields["outcome"]["complete"] and fields["origin"]["complete"]
    assert fields["resource"]["missing"] == 3  # login, failed login, logout have no resource id


def test_ui_is_served_with_a_strict_content_security_policy(admin):
    _, _, c = admin
    for path in ("/", "/events/abc", "/compliance"):
        page = c["anonymous"].get(path)
        assert page.status_code == 200 and '<script type="module" src="/ui/app.js">' in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert c["anonymous"].get("/ui/app.js").headers["content-type"].startswith("text/javascript")
    assert c["anonymous"].get("/ui/style.css").status_code == 200
    assert c["anonymous"].get("/ui/../api/events").status_code in (401, 404)


def test_admin_only_routes_refuse_auditors(store):
    import asyncio

    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from receiver.admin.access import AdminAuthenticator
    from receiver.admin.api import AdminAPI
    from receiver.config import AdminToken
    from receiver.telemetry import ReceiverMetrics

    api = AdminAPI(store, AdminAuthenticator(AdminToken(**t) for t in ADMIN_TOKENS), ReceiverMetrics())

    async def handler(request, access):
        return JSONResponse({"who": access.name})

    endpoint = api.admin_only(handler)

    def call(token: str | None) -> tuple[int, bytes]:
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        scope = {"type": "http", "method": "GET", "path": "/x", "headers": headers, "query_string": b""}
        response = asyncio.run(endpoint(Request(scope)))
        return response.status_code, response.body

    assert call(ADMIN) == (200, b'{"who":"root.admin"}')
    assert call(ACME_AUDITOR) == (403, b'{"error":"this route needs an admin token"}')
    assert call(None)[0] == 401
