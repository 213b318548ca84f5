"""Every statement the alert evaluator runs (receiver/alerts/): rule conditions as bound
parameters over the events table, read from the last evaluated position of each log onward.

A rule's ``match`` becomes an :class:`EventFilter` (the same SQL as a search); the position of an
event is its log (``chain_id``) and its index in that log (``seq``), which only grow as events
are stored, so each evaluation reads only the events stored since the one before.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

from receiver.filters import EventFilter, Match, parse_filters
from receiver.store.sql import EVENTS_TABLE, Statement, check_identifier, match_conditions, where_clause

STATE_TABLE = "alert_state"
LOG_COLUMN = "chain_id"
INDEX_COLUMN = "seq"
ALERT_EVENTS = "audit.alert."


def rule_where(match: dict[str, Any], tenants: tuple[str, ...], prefix: str = "") -> Statement:
    """The rule's condition: its filters, its tenants, never the alert events themselves."""
    filters = {k: v for k, v in match.items() if k != "service_name"}
    flt: EventFilter = parse_filters(filters).scoped(None if "*" in tenants else tenants)
    where = where_clause(flt)
    conds = [where.sql, f"NOT startsWith({prefix}event_name, '{ALERT_EVENTS}')"]
    params = dict(where.params)
    if "service_name" in match:
        value = match["service_name"]
        match_conditions(
            Match((value,) if isinstance(value, str) else tuple(value)),
            "service_name",
            "r_svc",
            conds,
            params,
        )
    return Statement(" AND ".join(f"({c})" for c in conds), params)


def _position(watermarks: dict[str, int]) -> tuple[str, dict[str, Any]]:
    """Events from each log's watermark (the next index to evaluate; a log not in the map: from
    leaf 0) up to its head at the start of this evaluation."""
    low = min(watermarks.values()) if watermarks else 0
    sql = (
        f"{INDEX_COLUMN} >= {{p_low:UInt64}} AND {LOG_COLUMN} != ''"
        f" AND {INDEX_COLUMN} >= arrayElement(mapFromArrays({{p_logs:Array(String)}}, {{p_marks:Array(UInt64)}}),"
        f" toString({LOG_COLUMN})) AND {INDEX_COLUMN} <= arrayElement(mapFromArrays({{p_logs:Array(String)}},"
        f" {{p_heads:Array(UInt64)}}), toString({LOG_COLUMN}))"
    )
    return sql, {"p_low": low}


def heads(database: str, watermarks: dict[str, int]) -> Statement:
    """Per log with events at or past ``watermarks``: one past its newest index."""
    low = min(watermarks.values()) if watermarks else 0
    sql = (
        f"SELECT toString({LOG_COLUMN}) AS log, max({INDEX_COLUMN}) + 1 AS head"
        f" FROM {check_identifier(database)}.{EVENTS_TABLE}"
        f" WHERE {INDEX_COLUMN} >= {{p_low:UInt64}} AND {LOG_COLUMN} != '' GROUP BY log"
    )
    return Statement(sql, {"p_low": low})


def _range_params(watermarks: dict[str, int], heads_now: dict[str, int]) -> dict[str, Any]:
    logs = sorted(heads_now)
    return {
        "p_logs": logs,
        "p_marks": [watermarks.get(log, 0) for log in logs],
        "p_heads": [heads_now[log] for log in logs],
    }


def _group_select(group_by: tuple[str, ...]) -> str:
    return "".join(f", toString({_column(c)}) AS g_{c}" for c in group_by)


def _column(name: str) -> str:
    """Group columns come from the validated config; still, only known names reach SQL."""
    from receiver.alerts.config import GROUP_COLUMNS

    if name not in GROUP_COLUMNS:
        raise ValueError(f"not a groupable column: {name!r}")
    return name


def new_matches(
    database: str,
    rule_cond: Statement,
    group_by: tuple[str, ...],
    watermarks: dict[str, int],
    heads_now: dict[str, int],
) -> Statement:
    """Per tenant and group, the events stored since the last evaluation that match the rule:
    how many, their time span, the first of them (by position) and a sample of ids."""
    position, params = _position(watermarks)
    params.update(_range_params(watermarks, heads_now), **rule_cond.params)
    groups = "".join(f", g_{c}" for c in group_by)
    sql = (
        "SELECT toString(tenant_id) AS tenant" + _group_select(group_by) + ", count() AS n,"
        " min(created_at) AS first_at, max(created_at) AS last_at,"
        f" argMin(concat(toString({LOG_COLUMN}), '#', toString({INDEX_COLUMN})),"
        f" ({LOG_COLUMN}, {INDEX_COLUMN})) AS first_position,"
        " groupArray(10)(toString(id)) AS samples"
        f" FROM {check_identifier(database)}.{EVENTS_TABLE}"
        f" WHERE {position} AND {rule_cond.sql}"
        f" GROUP BY tenant{groups} ORDER BY tenant{groups}"
    )
    return Statement(sql, params)


def window_counts(
    database: str,
    rule_cond: Statement,
    group_by: tuple[str, ...],
    watermarks: dict[str, int],
    heads_now: dict[str, int],
    window_us: int,
    low: dt.datetime,
) -> Statement:
    """For every tenant and group with new matching events, how many matching events fall in the
    window ``(T - window, T]`` ending at the group's newest new event ``T``, with a sample: one
    query for all groups (a join of the rule's events since ``low`` with the new groups)."""
    new = new_matches(database, rule_cond, group_by, watermarks, heads_now)
    on = " AND ".join(
        ["toString(e.tenant_id) = g.tenant", *(f"toString(e.{_column(c)}) = g.g_{c}" for c in group_by)]
    )
    keys = "".join(f", g.g_{c} AS g_{c}" for c in group_by)
    groups = "".join(f", g_{c}" for c in group_by)
    sql = (
        f"SELECT g.tenant AS tenant{keys}, any(g.first_position) AS first_position, any(g.last_at) AS last_at,"
        " count() AS cnt, groupArray(10)(toString(e.id)) AS sample_ids"
        f" FROM {check_identifier(database)}.{EVENTS_TABLE} AS e"
        f" INNER JOIN ({new.sql}) AS g ON {on}"
        " WHERE e.created_at > {w_low:DateTime64(6, 'UTC')} AND e.created_at <= g.last_at"
        " AND e.created_at > g.last_at - toIntervalMicrosecond({w_us:Int64})"
        f" AND {rule_cond.sql}"
        f" GROUP BY tenant{groups} ORDER BY tenant{groups}"
    )
    return Statement(sql, dict(new.params, w_low=low, w_us=window_us))


def last_seen(
    database: str, rule_cond: Statement, group_by: tuple[str, ...], since: dt.datetime
) -> Statement:
    """Per tenant and group, the newest matching event since ``since`` (silence rules, at start)."""
    groups = "".join(f", g_{c}" for c in group_by)
    params = dict(rule_cond.params, s_since=since)
    sql = (
        "SELECT toString(tenant_id) AS tenant" + _group_select(group_by) + ", max(created_at) AS last_at"
        f" FROM {check_identifier(database)}.{EVENTS_TABLE}"
        f" WHERE created_at >= {{s_since:DateTime64(6, 'UTC')}} AND {rule_cond.sql}"
        f" GROUP BY tenant{groups}"
    )
    return Statement(sql, params)


def fired_since(database: str, since: dt.datetime) -> Statement:
    """The alerts fired since ``since``: what suppression and pending deliveries look at."""
    sql = (
        "SELECT toString(id) AS id, toString(tenant_id) AS tenant, created_at, attributes"
        f" FROM {check_identifier(database)}.{EVENTS_TABLE}"
        " WHERE event_name = 'audit.alert.fired' AND created_at >= {f_since:DateTime64(6, 'UTC')}"
        " ORDER BY created_at"
    )
    return Statement(sql, {"f_since": since})


def alert_events(database: str, tenants: tuple[str, ...] | None, since: dt.datetime, limit: int) -> Statement:
    """Fired and reviewed alert events, newest first, within a token's tenants (GET /api/alerts)."""
    params: dict[str, Any] = {"a_since": since, "a_limit": limit}
    scope = ""
    if tenants is not None:
        scope = " AND tenant_id IN {a_tenants:Array(String)}"
        params["a_tenants"] = list(tenants)
    sql = (
        "SELECT toString(id) AS id, toString(tenant_id) AS tenant, event_name, user_id, created_at,"
        " resource_id, reason, attributes"
        f" FROM {check_identifier(database)}.{EVENTS_TABLE}"
        " WHERE event_name IN ('audit.alert.fired', 'audit.alert.reviewed')"
        " AND created_at >= {a_since:DateTime64(6, 'UTC')}"
        + scope
        + " ORDER BY created_at DESC LIMIT {a_limit:UInt32}"
    )
    return Statement(sql, params)


def state(database: str, kind: str) -> Statement:
    """Every row of one kind of bookkeeping, oldest first."""
    sql = (
        f"SELECT key, value, at FROM {check_identifier(database)}.{STATE_TABLE}"
        " WHERE kind = {s_kind:String} ORDER BY at, key, value"
    )
    return Statement(sql, {"s_kind": kind})


def lease_claims(database: str, term: int) -> Statement:
    sql = (
        f"SELECT value AS holder, min(at) AS claimed FROM {check_identifier(database)}.{STATE_TABLE}"
        " WHERE kind = 'lease' AND key = {l_term:String} GROUP BY holder ORDER BY claimed, holder"
    )
    return Statement(sql, {"l_term": str(term)})


def custom_query(query: str, start: dt.datetime, end: dt.datetime) -> Statement:
    """A sql rule's own query (from the operator's config), with the window bound."""
    return Statement(query, {"window_start": start, "window_end": end})


def state_table(kind: str, items: list[tuple[str, str]], now: dt.datetime) -> pa.Table:
    """Rows of the evaluator's bookkeeping table (inserted, never changed)."""
    return pa.table(
        {
            "kind": pa.array([kind] * len(items), pa.string()),
            "key": pa.array([k for k, _ in items], pa.string()),
            "value": pa.array([v for _, v in items], pa.string()),
            "at": pa.array([now] * len(items), pa.timestamp("us", tz="UTC")),
        }
    )
