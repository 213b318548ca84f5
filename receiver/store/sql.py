"""Every SQL statement the service runs, in one place, shared by both engines.

User input never becomes SQL text: it travels as ClickHouse query parameters
(``{name:Type}``), which both chDB and a ClickHouse server bind themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from receiver.filters import Cursor, EventFilter
from receiver.model import COLUMNS

DEFAULT_DATABASE = "audit"
EVENTS_TABLE = "audit_events"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SELECT_COLUMNS = ", ".join(COLUMNS)


@dataclass(frozen=True, slots=True)
class Statement:
    """SQL text with ``{name:Type}`` placeholders and the values to bind to them."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


def check_identifier(name: str) -> str:
    """Database names come from configuration, not users; still, refuse anything odd."""
    if not _IDENT.match(name):
        raise ValueError(f"not a valid database name: {name!r}")
    return name


def schema_statements(database: str = DEFAULT_DATABASE) -> list[str]:
    """The DDL, split into statements, for ``database``."""
    db = check_identifier(database)
    out: list[str] = []
    for sql_file in sorted(resources.files("receiver.store.schema").iterdir(), key=lambda p: p.name):
        if not sql_file.name.endswith(".sql"):
            continue
        text = sql_file.read_text(encoding="utf-8")
        lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
        for stmt in "\n".join(lines).split(";"):
            if stmt.strip():
                out.append(stmt.strip().replace("{db}", db))
    return out


def insert_columns() -> str:
    return _SELECT_COLUMNS


def where_clause(flt: EventFilter) -> Statement:
    """``WHERE`` text and parameters for a filter (tenant scope included)."""
    conds: list[str] = []
    params: dict[str, Any] = {}
    if flt.tenants is not None:
        conds.append("tenant_id IN {scope_tenants:Array(String)}")
        params["scope_tenants"] = list(flt.tenants)
    exact = (
        ("tenant", "tenant_id"),
        ("user", "user_id"),
        ("action", "action"),
        ("outcome", "outcome"),
        ("resource_type", "resource_type"),
        ("resource_id", "resource_id"),
        ("ip", "ip_address"),
        ("event_name", "event_name"),
    )
    for attr, column in exact:
        value = getattr(flt, attr)
        if value is not None:
            conds.append(f"{column} = {{f_{attr}:String}}")
            params[f"f_{attr}"] = value
    if flt.since is not None:
        conds.append("created_at >= {f_since:DateTime64(6, 'UTC')}")
        params["f_since"] = flt.since
    if flt.until is not None:
        conds.append("created_at < {f_until:DateTime64(6, 'UTC')}")
        params["f_until"] = flt.until
    if flt.q is not None:
        conds.append(
            "(positionCaseInsensitiveUTF8(reason, {f_q:String}) > 0"
            " OR positionCaseInsensitiveUTF8(changes, {f_q:String}) > 0"
            " OR arrayExists(v -> positionCaseInsensitiveUTF8(v, {f_q:String}) > 0, mapValues(attributes)))"
        )
        params["f_q"] = flt.q
    return Statement(" AND ".join(conds) if conds else "1", params)


def search(database: str, flt: EventFilter, limit: int, cursor: Cursor | None) -> Statement:
    """Newest first, keyset-paginated on (created_at, id): stable while rows arrive."""
    where = where_clause(flt)
    params = dict(where.params)
    keyset = ""
    if cursor is not None:
        keyset = (
            " AND created_at <= {c_ts:DateTime64(6, 'UTC')}"
            " AND (created_at < {c_ts:DateTime64(6, 'UTC')} OR id < {c_id:UUID})"
        )
        params["c_ts"] = cursor.created_at
        params["c_id"] = cursor.event_id
    params["limit"] = limit
    sql = (
        f"SELECT {_SELECT_COLUMNS} FROM {check_identifier(database)}.{EVENTS_TABLE}"
        f" WHERE {where.sql}{keyset} ORDER BY created_at DESC, id DESC LIMIT {{limit:UInt32}}"
    )
    return Statement(sql, params)


def stream_all(database: str, flt: EventFilter) -> Statement:
    """Every matching row, newest first (exports)."""
    where = where_clause(flt)
    sql = (
        f"SELECT {_SELECT_COLUMNS} FROM {check_identifier(database)}.{EVENTS_TABLE}"
        f" WHERE {where.sql} ORDER BY created_at DESC, id DESC"
    )
    return Statement(sql, dict(where.params))


def get_event(database: str, event_id: str, tenants: tuple[str, ...] | None) -> Statement:
    params: dict[str, Any] = {"event_id": event_id}
    scope = ""
    if tenants is not None:
        scope = " AND tenant_id IN {scope_tenants:Array(String)}"
        params["scope_tenants"] = list(tenants)
    sql = (
        f"SELECT {_SELECT_COLUMNS} FROM {check_identifier(database)}.{EVENTS_TABLE}"
        f" WHERE id = {{event_id:UUID}}{scope} LIMIT 1"
    )
    return Statement(sql, params)


def count(database: str, flt: EventFilter) -> Statement:
    where = where_clause(flt)
    sql = f"SELECT count() AS n FROM {check_identifier(database)}.{EVENTS_TABLE} WHERE {where.sql}"
    return Statement(sql, dict(where.params))


def existing_ids(database: str, tenant_ids: list[str], event_ids: list[str]) -> Statement:
    """Which of these ids are stored already (idempotent ingest: clients retry)."""
    sql = (
        f"SELECT DISTINCT toString(id) AS stored_id FROM {check_identifier(database)}.{EVENTS_TABLE}"
        " WHERE tenant_id IN {d_tenants:Array(String)} AND id IN {d_ids:Array(UUID)}"
    )
    return Statement(sql, {"d_tenants": tenant_ids, "d_ids": event_ids})
