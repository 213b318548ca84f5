"""Every Grafana panel and variable query, expanded as Grafana + the ClickHouse plugin expand
them (``grafana_expand``), run on the real engine (chDB) against the real schema with a seeded
audit trail; then the same SQL over HTTP through the read-only SQL endpoint with
clickhouse-connect, once for an all-tenant user and once for a user scoped to one tenant.

No Grafana binary runs here: the expansion is a port of the plugin's code, checked below
against the plugin's own test cases."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_seed import END, START, in_range, seed
from grafana_expand import ALL, TimeContext, Var, apply_conditional_all, expand, interpolate_macros

from receiver.model import events_to_table
from receiver.store import sql
from receiver.store.chdb_store import ChdbStore

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_FILES = sorted((REPO / "dashboards").glob("*.json"))
DS = {"type": "grafana-clickhouse-datasource", "uid": "${datasource}"}
CTX = TimeContext(START, END, dt.timedelta(hours=1))
EVENTS = seed()
RANGE = in_range(EVENTS)


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def variables_state(board: dict[str, Any], **chosen: Any) -> dict[str, Var]:
    """Every variable at its default (query variables: All), overridden by ``chosen``."""
    state: dict[str, Var] = {}
    for var in board["templating"]["list"]:
        name, kind = var["name"], var["type"]
        if kind == "datasource":
            continue
        if kind == "query":
            state[name] = Var([ALL], options=tuple(options_of(name)))
        elif kind == "custom":
            state[name] = Var(var["current"]["value"], options=tuple(o["value"] for o in var["options"]))
        elif kind == "textbox":
            state[name] = Var(var["current"]["value"])
    for name, value in chosen.items():
        state[name] = Var(value, options=state[name].options if name in state else ())
    return state


def options_of(name: str) -> list[str]:
    column = {"tenant": "tenant_id", "user": "user_id"}.get(name, name)
    return sorted({getattr(e, column) for e in RANGE})


@pytest.fixture(scope="module")
def seeded(chdb_root) -> Iterator[ChdbStore]:
    store = ChdbStore(chdb_root, database=f"g_{uuid.uuid4().hex[:10]}")
    store.insert(events_to_table(EVENTS))
    yield store
    store.close()


def run(store: ChdbStore, text: str) -> list[dict[str, Any]]:
    # the dashboards name the production database; this test's database has another name
    text = text.replace("audit.audit_events", f"{store.database}.audit_events")
    try:
        return store._query_arrow(sql.Statement(text)).to_pylist()
    except Exception as exc:  # show the SQL that failed
        raise AssertionError(f"{exc}\n--- SQL ---\n{text}") from exc


def column_types(store: ChdbStore, text: str) -> dict[str, str]:
    """The ClickHouse types of a query's columns (Arrow turns DateTime into plain integers)."""
    text = text.replace("audit.audit_events", f"{store.database}.audit_events")
    rows = store._query_arrow(sql.Statement(f"DESCRIBE ({text})")).to_pylist()
    return {r["name"]: r["type"] for r in rows}


def hour_of(value: Any) -> int:
    if isinstance(value, int):  # a DateTime through Arrow: seconds since the epoch
        value = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    return value.hour


def panel_by_title(board: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in panels(board) if p.get("title") == title)


def board_named(stem: str) -> dict[str, Any]:
    return load(REPO / "dashboards" / f"otel-audit-{stem}.json")


def query(store: ChdbStore, stem: str, title: str, **chosen: Any) -> list[dict[str, Any]]:
    board = board_named(stem)
    target = panel_by_title(board, title)["targets"][0]
    return run(store, expand(target["rawSql"], variables_state(board, **chosen), CTX))


# -- the port matches the plugin's own test cases -------------------------------------------


def test_expansion_matches_the_plugins_test_cases():
    t = TimeContext(
        dt.datetime(2014, 11, 12, 11, 45, 26, 123000, tzinfo=dt.timezone.utc),
        dt.datetime(2015, 11, 12, 11, 45, 26, 456000, tzinfo=dt.timezone.utc),
        dt.timedelta(minutes=1),
    )
    cases = {  # pkg/macros/macros_test.go
        "select * from foo where $__timeFilter(cast(sth as timestamp) )": "select * from foo where cast(sth as timestamp) >= toDateTime(1415792726) AND cast(sth as timestamp) <= toDateTime(1447328726)",
        "select * from foo where ( date >= $__fromTime and date <= $__toTime ) limit 100": "select * from foo where ( date >= toDateTime(1415792726) and date <= toDateTime(1447328726) ) limit 100",
        "SELECT $__timeInterval($__fromTime) AS from_time": "SELECT toStartOfInterval(toDateTime(toDateTime(1415792726)), INTERVAL 60 second) AS from_time",
        "select * from foo where $__timeFilter(coalesce(closed_at, $__toTime))": "select * from foo where coalesce(closed_at, toDateTime(1447328726)) >= toDateTime(1415792726) AND coalesce(closed_at, toDateTime(1447328726)) <= toDateTime(1447328726)",
        "select * from foo where msg = 'it\\'s -- fine' and $__fromTime": "select * from foo where msg = 'it\\'s -- fine' and toDateTime(1415792726)",
    }
    for raw, want in cases.items():
        assert interpolate_macros(raw, t) == want
    # src/data/CHDatasource.test.ts "Conditional All"
    raw = "select stuff from table where $__conditionalAll(fieldVal in ($fieldVal), $fieldVal) and $__conditionalAll(fieldVal in ($fieldVal2), $fieldVal2);"
    got = apply_conditional_all(raw, {"fieldVal": Var("'val1', 'val2'"), "fieldVal2": Var(ALL)})
    assert got == "select stuff from table where fieldVal in ($fieldVal) and 1=1;"
    assert apply_conditional_all("where $__conditionalAll(x = '$t', $t)", {"t": Var("")}) == "where 1=1"


# -- structure ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_dashboard_structure_and_every_variable_is_used(path: Path):
    board = load(path)  # a file that does not parse fails here
    assert board["uid"].startswith("otel-audit-") and board["title"] and board["schemaVersion"] >= 36
    variables = board["templating"]["list"]
    assert variables[0] == {**variables[0], "name": "datasource", "type": "datasource", "query": DS["type"]}
    sqls: list[str] = []
    for panel in panels(board):
        if panel.get("type") == "row":
            continue
        assert panel["datasource"] == DS, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DS and target["editorType"] == "sql" and target["rawSql"].strip()
            assert target["format"] in (0, 1, 2) and target["refId"]
            sqls.append(target["rawSql"])
    for var in variables:
        if var["type"] == "query":
            assert var["datasource"] == DS and var["query"]["editorType"] == "sql"
        if var["type"] == "datasource":
            continue
        name = re.escape(var["name"])
        pattern = rf"\$(?:{name}\b|\{{{name}(?::\w+)?\}})|\[\[{name}\]\]"
        assert any(re.search(pattern, s) for s in sqls), (
            f"{path.name}: variable {var['name']} is used by no panel"
        )
    assert {"uid", "title"} <= set(board) and len({p["id"] for p in panels(board)}) == len(
        list(panels(board))
    )


def test_dashboard_uids_are_unique_and_links_point_at_existing_dashboards():
    boards = [load(p) for p in DASHBOARD_FILES]
    uids = {b["uid"] for b in boards}
    assert len(uids) == len(boards) == 4
    for board in boards:
        for panel in panels(board):
            for override in panel.get("fieldConfig", {}).get("overrides", []):
                for prop in override["properties"]:
                    if prop["id"] == "links":
                        for link in prop["value"]:
                            uid = link["url"].split("/d/", 1)[1].split("/", 1)[0]
                            assert uid in uids, link["url"]
                            for var in re.findall(r"var-(\w+)=", link["url"]):
                                target = next(b for b in boards if b["uid"] == uid)
                                assert var in {v["name"] for v in target["templating"]["list"]}


# -- every query runs on the engine ----------------------------------------------------------------

SCENARIOS = {
    "all": {},
    "narrowed": {
        "tenant": ["acme"],
        "user": ["dave", "o'brien"],
        "action": ["read", "export"],
        "resource_type": ["patient"],
        "outcome": ["success"],
        "subject_user": "dave",
        "subject_resource": "it's-a-\\-trap",
        "business_tz": "Asia/Tokyo",
    },
}


def expected_columns(
    panel: dict[str, Any], rows: list[dict[str, Any]], fmt: int, types: dict[str, str]
) -> None:
    columns = list(types)
    if fmt == 0:  # time series: a time column first, ascending (sqlds long→wide needs it)
        assert columns[0] == "time" and types["time"].startswith("DateTime"), panel["title"]
        times = [r["time"] for r in rows]
        assert times == sorted(times), panel["title"]
        assert any(re.match(r"U?Int|Float", t) for t in types.values()), panel["title"]
    if fmt == 2:
        assert {"timestamp", "body", "level"} <= set(columns), panel["title"]
        assert types["timestamp"].startswith("DateTime64") and types["body"] == "String"
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        if override["matcher"]["id"] == "byName":
            assert override["matcher"]["options"] in columns, (panel["title"], override["matcher"]["options"])


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_every_panel_and_variable_query_runs(seeded: ChdbStore, path: Path, scenario: str):
    board = load(path)
    chosen = {k: v for k, v in SCENARIOS[scenario].items() if k in variables_state(board)}
    state = variables_state(board, **chosen)
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            rows = run(seeded, expand(var["query"]["rawSql"], state, CTX))
            assert rows and len(rows[0]) == 1, var["name"]
    for panel in panels(board):
        for target in panel.get("targets", []):
            text = expand(target["rawSql"], state, CTX)
            assert "$" not in text.replace("$$", ""), text  # no macro or variable left over
            rows = run(seeded, text)
            if scenario == "all":
                assert rows, f"{path.stem}: {panel['title']} shows nothing on the seeded data"
            expected_columns(panel, rows, target["format"], column_types(seeded, text))


# -- exact numbers ----------------------------------------------------------------------------------


def test_overview_numbers(seeded: ChdbStore):
    (totals,) = query(seeded, "overview", "Totals")
    assert totals == {
        "events": len(RANGE),
        "failures": sum(e.outcome == "failure" for e in RANGE),
        "denied": 4,
        "users": len({e.user_id for e in RANGE}),
        "tenants": 2,
    }
    top = query(seeded, "overview", "Top users")
    assert (top[0]["user_id"], top[0]["events"], top[0]["not_successful"]) == ("dave", 155, 4)
    acme = query(seeded, "overview", "Totals", tenant=["acme"], outcome=["failure", "denied"])
    assert acme[0]["events"] == sum(e.tenant_id == "acme" and e.outcome != "success" for e in RANGE) == 19
    by_action = query(seeded, "overview", "Events over time by action", action=["read"])
    assert sum(r["events"] for r in by_action) == sum(e.action == "read" for e in RANGE)
    assert {r["action"] for r in by_action} == {"read"}


def test_security_numbers(seeded: ChdbStore):
    failed = query(seeded, "security", "Failed logins over time")
    assert sum(r["failed_logins"] for r in failed) == 17
    assert [hour_of(r["time"]) for r in failed] == [3, 8]  # hourly buckets ($__interval = 1h)
    (brute,) = query(seeded, "security", "Brute-force candidates by source IP")
    assert (brute["source_ip"], brute["failures"], brute["accounts_tried"], brute["tenants"]) == (
        "192.0.2.66",
        14,
        4,
        2,
    )
    assert len(query(seeded, "security", "Brute-force candidates by source IP", min_failures="3")) == 2
    by_user = {r["user"]: r["failures"] for r in query(seeded, "security", "Failed logins by user")}
    assert by_user == {"(anonymous)": 4, "alice": 4, "admin": 4, "bob": 3, "gina": 2}
    new_ips = query(seeded, "security", "Logins from new IPs")
    assert [(r["user_id"], r["ip_address"]) for r in new_ips] == [("carol", "203.0.113.9")]
    off = query(seeded, "security", "Off-hours admin actions")
    assert {(r["user_id"], r["action"]) for r in off} == {("carol", "grant"), ("bob", "delete")}
    tokyo = query(seeded, "security", "Off-hours admin actions", business_tz="Asia/Tokyo")
    assert len(tokyo) == 5 and ("carol", "grant") not in {(r["user_id"], r["action"]) for r in tokyo}
    denied = query(seeded, "security", "Access denied")
    assert len(denied) == 4 and {r["user_id"] for r in denied} == {"dave"}
    grants = query(seeded, "security", "Permission grants and revokes")
    assert [(r["granted_by"], r["action"]) for r in grants] == [("carol", "revoke"), ("carol", "grant")]


def test_sensitive_data_numbers(seeded: ChdbStore):
    reads = query(seeded, "sensitive-data", "PII reads by user")
    assert [(r["user_id"], r["reads"], r["distinct_records"]) for r in reads] == [
        ("dave", 150, 150),
        ("erin", 2, 2),
    ]
    bulk = query(seeded, "sensitive-data", "Bulk reads and exports")
    assert [(hour_of(r["hour"]), r["user_id"], r["distinct_records_read"], r["exports"]) for r in bulk] == [
        (15, "dave", 0, 1),
        (14, "dave", 150, 0),
    ]
    assert len(query(seeded, "sensitive-data", "Bulk reads and exports", bulk_threshold="1000")) == 1
    audit_log = query(seeded, "sensitive-data", "Access to the audit log itself")
    assert [(r["user_id"], r["action"]) for r in audit_log] == [("frank", "export"), ("frank", "read")]


def test_investigation_numbers(seeded: ChdbStore):
    history = query(seeded, "investigation", "History (table)", subject_user="dave")
    assert len(history) == sum(e.user_id == "dave" for e in RANGE) == 155
    log = query(seeded, "investigation", "History (log)", subject_user="carol")
    assert [r["body"] for r in log][-1] == "carol login session/ → success"
    assert {r["level"] for r in query(seeded, "investigation", "History (log)", subject_user="dave")} == {
        "info",
        "warning",
    }
    who = query(seeded, "investigation", "Counterparts", subject_resource="doc-10")
    assert [(r["counterpart"], r["events"], r["not_successful"]) for r in who] == [
        ("dave", 2, 2),
        ("alice", 1, 0),
    ]
    touched = query(seeded, "investigation", "Counterparts", subject_user="bob")
    assert touched[0]["counterpart"] == "invoice/inv-1" and touched[0]["events"] == 5


# -- the same SQL over HTTP, through the read-only endpoint, as clickhouse-connect sends it ----------


@pytest.fixture(scope="module")
def endpoint(seeded: ChdbStore) -> Iterator[dict[str, Any]]:
    import clickhouse_connect

    from receiver.chhttp import start_sql_endpoint
    from receiver.config import SqlEndpoint

    users = [
        {"user": "grafana", "password": "grafana-password", "tenants": ["*"]},
        {"user": "acme-grafana", "password": "acme-password-1", "tenants": ["acme"]},
    ]
    server = start_sql_endpoint(seeded, SqlEndpoint(listen="127.0.0.1:0", users=users))
    clients = {
        u["user"]: clickhouse_connect.get_client(
            host="127.0.0.1",
            port=server.port,
            username=u["user"],
            password=u["password"],
            database=seeded.database,
        )
        for u in users
    }
    yield clients
    for client in clients.values():
        client.close()
    server.stop()


def test_dashboards_over_http_through_the_read_only_endpoint(seeded: ChdbStore, endpoint: dict[str, Any]):
    everyone, acme = endpoint["grafana"], endpoint["acme-grafana"]
    for path in DASHBOARD_FILES:
        board = load(path)
        state = variables_state(board)
        queries = [v["query"]["rawSql"] for v in board["templating"]["list"] if v["type"] == "query"]
        queries += [t["rawSql"] for p in panels(board) for t in p.get("targets", [])]
        for raw in queries:
            text = expand(raw, state, CTX).replace("audit.audit_events", f"{seeded.database}.audit_events")
            direct = run(seeded, text)
            over_http = everyone.query(text)
            assert len(over_http.result_rows) == len(direct), text
            assert list(over_http.column_names) == (
                list(direct[0]) if direct else list(over_http.column_names)
            )
            acme.query(text)  # a scoped user runs every dashboard query too
    # the scoped user sees its tenant only, whatever the dashboard asks for
    totals_sql = expand(
        panel_by_title(board_named("overview"), "Totals")["targets"][0]["rawSql"],
        variables_state(board_named("overview")),
        CTX,
    )
    totals_sql = totals_sql.replace("audit.audit_events", f"{seeded.database}.audit_events")
    assert acme.query(totals_sql).first_item["events"] == sum(e.tenant_id == "acme" for e in RANGE)
    assert acme.query(totals_sql).first_item["tenants"] == 1
    assert everyone.query(totals_sql).first_item["events"] == len(RANGE)
    tenant_var = next(v for v in board_named("overview")["templating"]["list"] if v["name"] == "tenant")
    tenant_sql = expand(tenant_var["query"]["rawSql"], {}, CTX).replace(
        "audit.audit_events", f"{seeded.database}.audit_events"
    )
    assert [r[0] for r in acme.query(tenant_sql).result_rows] == ["acme"]
    assert [r[0] for r in everyone.query(tenant_sql).result_rows] == ["acme", "globex"]
