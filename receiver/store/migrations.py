"""Versioned, idempotent schema migrations: ``receiver/store/schema/NNN_name.sql``.

Every file is one version (its number); files apply in order and each applied version is
recorded in ``{db}.schema_migrations`` (version, name, checksum, time), so ``otel-audit
migrate`` and every store start apply only what is missing. The statements themselves are
idempotent (``IF NOT EXISTS``), so a run cut short between a statement and its record is
simply repeated.

The same definitions give two variants: a single server / chDB (the files as written) and a
cluster (``cluster_statements``): ``ON CLUSTER``, ``Replicated*MergeTree`` local tables and a
``Distributed`` table of the original name sharded by ``cityHash64(tenant_id)``, so one
tenant's rows (and its hash chain) live on one shard.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from receiver.store import sql

MIGRATIONS_TABLE = "schema_migrations"
_FILE = re.compile(r"^(\d{3})_([A-Za-z0-9_]+)\.sql$")
_CREATE_DB = re.compile(r"^CREATE DATABASE IF NOT EXISTS (\{db\})\s*$", re.S)
_CREATE_TABLE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS \{db\}\.(?P<name>\w+)\s*(?P<body>\(.*\))\s*"
    r"ENGINE\s*=\s*(?P<engine>\w*MergeTree)(?P<args>\([^)]*\))?(?P<rest>.*)$",
    re.S,
)
_ALTER = re.compile(r"^ALTER TABLE \{db\}\.(?P<name>\w+)\s+(?P<rest>.*)$", re.S)
_COLUMN_ALTER = re.compile(r"^\s*(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b", re.I)
#: any other DDL on a named object: ON CLUSTER goes right after the name
_OTHER_DDL = re.compile(
    r"^((?:CREATE|DROP|RENAME|TRUNCATE|ATTACH|DETACH)\s+(?:OR REPLACE\s+)?"
    r"(?:TABLE|MATERIALIZED VIEW|VIEW|DICTIONARY|FUNCTION|ROW POLICY|DATABASE)"
    r"(?:\s+IF (?:NOT )?EXISTS)?\s+[\w{}.`]+)(.*)$",
    re.S | re.I,
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    #: statements with ``{db}`` still in place
    statements: tuple[str, ...]
    checksum: str


def split_statements(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def load_migrations() -> list[Migration]:
    out: list[Migration] = []
    for path in resources.files("receiver.store.schema").iterdir():
        match = _FILE.match(path.name)
        if match is None:
            continue
        text = path.read_text(encoding="utf-8")
        out.append(
            Migration(
                version=int(match.group(1)),
                name=match.group(2),
                statements=tuple(split_statements(text)),
                checksum=hashlib.sha256(text.encode()).hexdigest()[:16],
            )
        )
    out.sort(key=lambda m: m.version)
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two schema files share a version number: {versions}")
    return out


def _has_tenant(body: str) -> bool:
    return re.search(r"^\s*tenant_id\s", body, re.M) is not None


def tenant_tables() -> set[str]:
    """Tables (by their name in the definitions) whose rows carry ``tenant_id``."""
    names: set[str] = set()
    for migration in load_migrations():
        for stmt in migration.statements:
            match = _CREATE_TABLE.match(stmt)
            if match and _has_tenant(match.group("body")):
                names.add(match.group("name"))
    return names


def cluster_statement(stmt: str, cluster: str, sharded: set[str]) -> list[str]:
    """One single-server statement → its cluster form (one or more statements)."""
    on = f"ON CLUSTER '{sql.check_identifier(cluster)}'"
    if _CREATE_DB.match(stmt):
        return [f"{stmt} {on}"]
    match = _CREATE_TABLE.match(stmt)
    if match:
        name, body, engine = match.group("name"), match.group("body"), match.group("engine")
        args = (match.group("args") or "()")[1:-1].strip()
        if name in sharded:
            local, path = f"{name}_local", "/clickhouse/tables/{shard}/{db}/" + f"{name}_local"
        else:  # small, tenant-less tables: one copy on every node
            local, path = name, "/clickhouse/tables/all/{db}/" + name
        replicated_args = f"'{path}', '{{replica}}'" + (f", {args}" if args else "")
        statements = [
            f"CREATE TABLE IF NOT EXISTS {{db}}.{local} {on}\n{body}\n"
            f"ENGINE = Replicated{engine}({replicated_args}){match.group('rest')}"
        ]
        if name in sharded:
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {{db}}.{name} {on} AS {{db}}.{local}\n"
                f"ENGINE = Distributed('{cluster}', '{{db}}', '{local}', cityHash64(tenant_id))"
            )
        return statements
    match = _ALTER.match(stmt)
    if match:
        name, rest = match.group("name"), match.group("rest")
        if name not in sharded:
            return [f"ALTER TABLE {{db}}.{name} {on} {rest}"]
        statements = [f"ALTER TABLE {{db}}.{name}_local {on} {rest}"]
        if _COLUMN_ALTER.match(rest):
            statements.append(f"ALTER TABLE {{db}}.{name} {on} {rest}")
        return statements
    match = _OTHER_DDL.match(stmt)
    if match:
        return [f"{match.group(1)} {on}{match.group(2)}"]
    if stmt.lstrip().upper().startswith(("INSERT", "SELECT")):
        return [stmt]  # data statements run once, through the Distributed tables
    raise ValueError(f"no cluster form for this statement: {stmt[:120]!r}")


def bootstrap_statements(cluster: str | None) -> list[str]:
    """The migrations table itself (not a numbered file: it records them)."""
    table = (
        f"CREATE TABLE IF NOT EXISTS {{db}}.{MIGRATIONS_TABLE}\n"
        "(\n    version UInt32,\n    name String,\n    checksum String,\n"
        "    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)\n)\n"
        "ENGINE = ReplacingMergeTree(applied_at)\nORDER BY version"
    )
    statements = ["CREATE DATABASE IF NOT EXISTS {db}", table]
    if cluster is None:
        return statements
    out: list[str] = []
    for stmt in statements:
        out.extend(cluster_statement(stmt, cluster, set()))
    return out


def statements_for(migration: Migration, database: str, cluster: str | None = None) -> list[str]:
    db = sql.check_identifier(database)
    stmts: list[str] = list(migration.statements)
    if cluster is not None:
        sharded = tenant_tables()
        stmts = [out for stmt in stmts for out in cluster_statement(stmt, cluster, sharded)]
    return [stmt.replace("{db}", db) for stmt in stmts]


def applied_versions(database: str) -> sql.Statement:
    return sql.Statement(
        f"SELECT version, argMax(checksum, applied_at) AS last_checksum"
        f" FROM {sql.check_identifier(database)}.{MIGRATIONS_TABLE} GROUP BY version ORDER BY version"
    )


def status(database: str) -> sql.Statement:
    return sql.Statement(
        f"SELECT version, argMax(name, applied_at) AS last_name, max(applied_at) AS last_applied"
        f" FROM {sql.check_identifier(database)}.{MIGRATIONS_TABLE} GROUP BY version"
    )


def record(database: str, migration: Migration) -> sql.Statement:
    return sql.Statement(
        f"INSERT INTO {sql.check_identifier(database)}.{MIGRATIONS_TABLE} (version, name, checksum)"
        " SELECT {v:UInt32}, {n:String}, {c:String}",
        {"v": migration.version, "n": migration.name, "c": migration.checksum},
    )


def full_script(database: str, cluster: str | None = None) -> str:
    """Every statement of every version, for review or for ``clickhouse-client --multiquery``."""
    parts = [stmt.replace("{db}", database) + ";" for stmt in bootstrap_statements(cluster)]
    for migration in load_migrations():
        parts.append(f"-- {migration.version:03d}_{migration.name}")
        parts.extend(stmt + ";" for stmt in statements_for(migration, database, cluster))
    return "\n\n".join(parts) + "\n"


def schema_statements(database: str = sql.DEFAULT_DATABASE) -> list[str]:
    """The DDL of every schema version, in order, for ``database`` (single server / chDB)."""
    return [stmt for m in load_migrations() for stmt in statements_for(m, database)]
