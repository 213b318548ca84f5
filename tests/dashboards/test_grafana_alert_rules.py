"""The Grafana alert rules shipped for the default rule pack (dashboards/provisioning/alerting/):
the file is what the pack generates, and every rule's SQL, expanded as the ClickHouse plugin
expands it, runs on the real engine and counts exactly what the receiver's own evaluator would
match (the same rule through bound parameters)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from dashboard_seed import END, START, seed
from grafana_expand import TimeContext, interpolate_macros

from receiver.alerts.grafana import DATASOURCE_UID, provisioning, rule_sql
from receiver.alerts.pack import PACK
from receiver.model import events_to_table
from receiver.store import sql
from receiver.store.alerts_sql import rule_where
from receiver.store.chdb_store import ChdbStore

REPO = Path(__file__).resolve().parents[2]
RULES_FILE = REPO / "dashboards" / "provisioning" / "alerting" / "otel-audit-pack.yaml"
CTX = TimeContext(START, END, __import__("datetime").timedelta(hours=1))


@pytest.fixture(scope="module")
def seeded(chdb_root):
    store = ChdbStore(chdb_root, database=f"ga_{uuid.uuid4().hex[:10]}")
    store.insert(events_to_table(seed()))
    yield store
    store.close()


def test_the_file_is_generated_from_the_pack():
    assert RULES_FILE.read_text(encoding="utf-8") == provisioning(), (
        "regenerate: python -m receiver.alerts.grafana > dashboards/provisioning/alerting/otel-audit-pack.yaml"
    )
    doc = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    rules = doc["groups"][0]["rules"]
    assert [r["title"] for r in rules] == [r.name for r in PACK]
    assert len({r["uid"] for r in rules}) == len(rules) and all(len(r["uid"]) <= 40 for r in rules)
    for r in rules:
        assert r["data"][0]["datasourceUid"] == DATASOURCE_UID and r["condition"] == "C"


@pytest.mark.parametrize("rule", PACK, ids=lambda r: r.name)
def test_each_rules_sql_counts_what_the_evaluator_matches(seeded, rule):
    text, _, _ = rule_sql(rule)
    expanded = interpolate_macros(text, CTX).replace("audit.audit_events", f"{seeded.database}.audit_events")
    rows = seeded._query_arrow(sql.Statement(expanded)).to_pylist()
    cond = rule_where(rule.match, rule.tenants)
    reference = sql.Statement(
        f"SELECT count() AS n FROM {seeded.database}.audit_events WHERE {cond.sql}"
        " AND created_at >= {s:DateTime64(6, 'UTC')} AND created_at <= {u:DateTime64(6, 'UTC')}",
        {**cond.params, "s": START, "u": END},
    )
    expected = seeded._query_arrow(reference).to_pylist()[0]["n"]
    if rule.kind == "silence":
        assert len(rows) == len({(r["tenant_id"], r["service_name"]) for r in rows}) > 0
        assert all(r["silent_seconds"] >= 0 for r in rows)
    else:
        assert sum(r["events"] for r in rows) == expected
    assert all(set(r) >= {"tenant_id", *rule.group_by} for r in rows)


def test_the_seed_exercises_the_pack(seeded):
    """The off-hours grants of the dashboards' seed fire the pack's privilege-grant rule."""
    (brute,) = [r for r in PACK if r.name == "pci-10.2.1.2-privilege-grant"]
    text, _, above = rule_sql(brute)
    expanded = interpolate_macros(text, CTX).replace("audit.audit_events", f"{seeded.database}.audit_events")
    rows = seeded._query_arrow(sql.Statement(expanded)).to_pylist()
    assert any(r["events"] > above for r in rows)
