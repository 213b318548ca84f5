"""Schema migrations: versioned, recorded, idempotent on chDB; the cluster variant of the same
definitions parses with ClickHouse's own parser and has the shape a cluster needs."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from receiver.store import migrations, sql
from receiver.store.chdb_store import ChdbStore

REPO = Path(__file__).resolve().parents[2]


def test_every_version_applies_once_and_is_recorded(store: ChdbStore, monkeypatch, caplog):
    versions = [m.version for m in migrations.load_migrations()]
    assert versions == sorted(versions) and 1 in versions
    status = store.schema_status()
    assert [row["version"] for row in status] == versions and all(row["applied_at"] for row in status)
    assert store.migrate() == []  # nothing left to do
    rows = store._query_arrow(sql.Statement(f"SELECT version FROM {store.database}.schema_migrations"))
    assert sorted(rows.column("version").to_pylist()) == versions  # one record per version

    # a new version is applied alone, in order; an edited, applied file is reported, not re-run
    extra = migrations.Migration(
        999,
        "test_extra",
        ("CREATE TABLE IF NOT EXISTS {db}.extra (tenant_id String) ENGINE = MergeTree ORDER BY tenant_id",),
        "c1",
    )
    known = migrations.load_migrations()
    monkeypatch.setattr(migrations, "load_migrations", lambda: [*known, extra])
    assert store.migrate() == ["999_test_extra"]
    assert store.migrate() == []
    edited = migrations.Migration(999, "test_extra", extra.statements, "c2")
    monkeypatch.setattr(migrations, "load_migrations", lambda: [*known, edited])
    with caplog.at_level(logging.WARNING, logger="otel_audit.store"):
        assert store.migrate() == []
    assert "999_test_extra changed after it was applied" in caplog.text


def test_a_store_from_before_versioning_is_adopted_without_losing_rows(chdb_root):
    """A database made by the unversioned DDL (no schema_migrations): opening it records
    every version, re-running the idempotent statements, and keeps the rows."""
    db = f"m_{uuid.uuid4().hex[:10]}"
    first = ChdbStore(chdb_root, database=db)
    first._command(sql.Statement(f"DROP TABLE {db}.schema_migrations"))
    first._command(
        sql.Statement(
            f"INSERT INTO {db}.audit_events (id, tenant_id, user_id, action, resource_type, event_name,"
            " created_at, received_at, retain_until) VALUES (generateUUIDv4(), 'acme', 'u', 'read', 'doc',"
            " 'audit.doc.read', now64(6), now64(6), today() + 30)"
        )
    )
    first.close()
    again = ChdbStore(chdb_root, database=db)
    try:
        assert again.applied_on_open == [f"{m.version:03d}_{m.name}" for m in migrations.load_migrations()]
        from receiver.filters import EventFilter

        assert again.count(EventFilter()) == 1
    finally:
        again.close()


def test_migrate_command(tmp_path):
    url = f"chdb://{tmp_path / 'data'}"
    run = [sys.executable, "-m", "receiver.cli", "migrate", "--store", url]
    first = subprocess.run(run, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "applied: " + ", ".join(
        f"{m.version:03d}_{m.name}" for m in migrations.load_migrations()
    )
    second = subprocess.run([*run, "--status"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert second.returncode == 0 and "not applied" not in second.stdout
    assert len(second.stdout.strip().splitlines()) == len(migrations.load_migrations())
    printed = subprocess.run(
        [sys.executable, "-m", "receiver.cli", "migrate", "--print-sql", "--cluster", "prod"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert printed.returncode == 0 and "ON CLUSTER 'prod'" in printed.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "receiver.cli", "migrate", "--print-sql", "--cluster", "x; DROP"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert bad.returncode == 2 and "not a valid" in bad.stderr


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";\n") if s.strip() and not s.strip().startswith("--")]


def test_cluster_variant_parses_and_shards_by_tenant(store: ChdbStore):
    script = migrations.full_script("audit", "prod")
    statements = _statements(script)
    single = _statements(migrations.full_script("audit"))
    assert len(statements) > len(single)
    for stmt in statements:
        # ClickHouse's own parser (no cluster here to run it on): every statement is valid
        stmt = re.sub(r"^-- .*\n+", "", stmt)
        formatted = store._query_arrow(sql.Statement("SELECT formatQuery({q:String}) AS f", {"q": stmt}))
        assert formatted.column("f")[0].as_py()
        if stmt.startswith(("CREATE", "ALTER")):
            assert "ON CLUSTER 'prod'" in stmt, stmt
    tenant_tables = migrations.tenant_tables()
    assert "audit_events" in tenant_tables
    for name in tenant_tables:
        local = next(s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS audit.{name}_local "))
        assert (
            f"ReplicatedMergeTree('/clickhouse/tables/{{shard}}/audit/{name}_local', '{{replica}}')" in local
            or ("Replicated" in local and "{shard}" in local)
        )
        dist = next(s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS audit.{name} "))
        assert f"AS audit.{name}_local" in dist
        assert f"Distributed('prod', 'audit', '{name}_local', cityHash64(tenant_id))" in dist
    bootstrap = next(s for s in statements if "schema_migrations" in s and s.startswith("CREATE TABLE"))
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/all/audit/schema_migrations'" in bootstrap
    # column changes reach both the local and the Distributed table; other ALTERs only the local
    add = migrations.cluster_statement(
        "ALTER TABLE {db}.audit_events ADD COLUMN IF NOT EXISTS x String", "prod", {"audit_events"}
    )
    assert add == [
        "ALTER TABLE {db}.audit_events_local ON CLUSTER 'prod' ADD COLUMN IF NOT EXISTS x String",
        "ALTER TABLE {db}.audit_events ON CLUSTER 'prod' ADD COLUMN IF NOT EXISTS x String",
    ]
    ttl = migrations.cluster_statement(
        "ALTER TABLE {db}.audit_events MODIFY TTL retain_until", "prod", {"audit_events"}
    )
    assert ttl == ["ALTER TABLE {db}.audit_events_local ON CLUSTER 'prod' MODIFY TTL retain_until"]
    with pytest.raises(ValueError):
        migrations.cluster_statement("OPTIMIZE TABLE {db}.audit_events", "prod", {"audit_events"})


def test_server_grants_and_deploy_users_parse_with_clickhouses_parser(store: ChdbStore):
    """No server here to run them on: ClickHouse's own parser checks every statement of
    grants.sql and every GRANT of the deploy users file."""
    import xml.etree.ElementTree as ET

    grants = (REPO / "receiver/store/schema/server/grants.sql").read_text()
    statements = migrations.split_statements(grants)
    users = ET.parse(REPO / "deploy/clickhouse/users.d/otel-audit.xml").getroot()
    # in a users file a GRANT names no grantee (it is the enclosing user)
    statements += [f"{q.text} TO some_user" for q in users.iter("query")]
    assert len(statements) > 15
    for stmt in statements:
        formatted = store._query_arrow(sql.Statement("SELECT formatQuery({q:String}) AS f", {"q": stmt}))
        assert formatted.column("f")[0].as_py(), stmt
