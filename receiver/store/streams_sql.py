"""Every statement log streams run (receiver/streams/): a stream's next batch read from its
positions onward, its lag, its bookkeeping (positions, lease claims, replays) and a replay's
new positions. Positions are per log (``chain_id``): the NEXT index (``seq``) to deliver, so
the reads work whether a log's indexes start at 0 or at 1."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

from receiver.filters import Match, parse_filters
from receiver.model import API_COLUMNS
from receiver.store.sql import (
    EVENTS_TABLE,
    Statement,
    _json_member,
    check_identifier,
    match_conditions,
    where_clause,
)

STATE_TABLE = "stream_state"
LOG = "chain_id"
INDEX = "seq"


def condition(match: dict[str, Any], tenants: tuple[str, ...]) -> Statement:
    """The stream's tenants and filter: the same forms and SQL as an alert rule's ``match``
    (``rule_where``), but alert events are streamed too."""
    filters = {k: v for k, v in match.items() if k != "service_name"}
    where = where_clause(parse_filters(filters).scoped(None if "*" in tenants else tenants))
    conds = [where.sql]
    params = dict(where.params)
    if "service_name" in match:
        value = match["service_name"]
        values = (value,) if isinstance(value, str) else tuple(value)
        match_conditions(Match(values), "service_name", "s_svc", conds, params)
    return Statement(" AND ".join(f"({c})" for c in conds), params)


def _after(positions: dict[str, int]) -> tuple[str, dict[str, Any]]:
    """Events at or after each log's next index (a log not in the map: from its first event)."""
    logs = sorted(positions)
    sql = (
        f"{LOG} != '' AND {INDEX} >= arrayElement(mapFromArrays({{s_logs:Array(String)}},"
        f" {{s_next:Array(UInt64)}}), toString({LOG}))"
    )
    return sql, {"s_logs": logs, "s_next": [positions[k] for k in logs]}


def next_batch(
    database: str,
    cond: Statement,
    positions: dict[str, int],
    limit: int,
    columns: bool = False,
    window: tuple[str, int] | None = None,
    probe: bool = False,
    only: dict[str, int] | None = None,
) -> Statement:
    """Up to ``limit`` undelivered events, each log's in index order (a prefix of every log):
    ``line`` (the event as /api/events shows it, JSON made by the engine, with its newline),
    ``log``, ``idx`` and, with ``columns``, the stored API columns (Parquet objects). The
    sort and limit run first, on the bare rows; the JSON is made only for the rows kept.
    ``window`` (log, size) reads only that log's indexes from its position to position + size;
    ``probe`` selects only ``log`` and ``idx`` (is a full batch waiting?). ``only`` (log ->
    next index, not empty): read only these logs (the caller knows no other log holds an
    undelivered event), from the lowest of their next indexes, which lets the ``seq`` minmax
    index skip the granules below it."""
    after, params = _after(positions)
    if window is not None:  # one log's indexes [next, next + size): the seq minmax index prunes
        log_name, size = window
        start = positions.get(log_name, 0)
        after = f"{LOG} = {{w_log:String}} AND {INDEX} >= {{w_from:UInt64}} AND {INDEX} < {{w_to:UInt64}}"
        params = {"w_log": log_name, "w_from": start, "w_to": start + size}
    if only is not None:  # those logs, from the lowest next index: the seq minmax index skips older granules
        after += f" AND {LOG} IN {{s_only:Array(String)}} AND {INDEX} >= {{s_floor:UInt64}}"
        params = dict(params, s_only=sorted(only), s_floor=min(only.values()))
    inner = (
        f"SELECT *, toString({LOG}) AS log, {INDEX} AS idx"
        f" FROM {check_identifier(database)}.{EVENTS_TABLE}"
        f" WHERE {after} AND {cond.sql} ORDER BY log, idx LIMIT {{s_limit:UInt32}}"
    )
    bound = dict(params, s_limit=limit, **cond.params)
    if probe:
        return Statement(f"SELECT log, idx FROM ({inner})", bound)
    members = ", ',', ".join(_json_member(c) for c in sorted(API_COLUMNS))
    extra = "".join(f", {'toString(e.id) AS id' if c == 'id' else f'e.{c} AS {c}'}" for c in API_COLUMNS)
    sql = (
        f"SELECT concat('{{', {members}, '}}\\n') AS line, e.log AS log, e.idx AS idx"
        + (extra if columns else "")
        + f" FROM ({inner}) AS e ORDER BY log, idx"
    )
    return Statement(sql, bound)


def lag(database: str, cond: Statement, positions: dict[str, int]) -> Statement:
    """How many events are not yet delivered, and the oldest one's storage time."""
    after, params = _after(positions)
    sql = (
        "SELECT count() AS events, min(received_at) AS oldest"
        f" FROM {check_identifier(database)}.{EVENTS_TABLE} WHERE {after} AND {cond.sql}"
    )
    return Statement(sql, dict(params, **cond.params))


def lag_by_tenant(database: str, cond: Statement, positions: dict[str, int], limit: int) -> Statement:
    """The undelivered events per tenant and the oldest one's storage time (a backlog alert):
    the ``limit`` tenants with the most."""
    after, params = _after(positions)
    sql = (
        "SELECT toString(tenant_id) AS tenant, count() AS events, min(received_at) AS oldest"
        f" FROM {check_identifier(database)}.{EVENTS_TABLE} WHERE {after} AND {cond.sql}"
        " GROUP BY tenant ORDER BY events DESC, tenant LIMIT {t_limit:UInt32}"
    )
    return Statement(sql, dict(params, t_limit=limit, **cond.params))


def replay_positions(database: str, cond: Statement, since: dt.datetime) -> Statement:
    """Per log of the stream's events, the first index whose event is at or after ``since``, and its tenant."""
    sql = (
        f"SELECT toString({LOG}) AS log, min({INDEX}) AS first, any(toString(tenant_id)) AS tenant"
        f" FROM {check_identifier(database)}.{EVENTS_TABLE}"
        f" WHERE {LOG} != '' AND created_at >= {{r_since:DateTime64(6, 'UTC')}} AND {cond.sql}"
        " GROUP BY log ORDER BY log"
    )
    return Statement(sql, dict(cond.params, r_since=since))


def positions(database: str, stream: str) -> Statement:
    """The newest position row of every log of a stream."""
    sql = (
        "SELECT key AS log, argMax(value, at) AS next"
        f" FROM {check_identifier(database)}.{STATE_TABLE}"
        " WHERE stream = {p_stream:String} AND kind = 'position' GROUP BY key ORDER BY key"
    )
    return Statement(sql, {"p_stream": stream})


def last_state(database: str, stream: str, kind: str) -> Statement:
    """When a row of one kind of the stream's bookkeeping was last stored, and how many: a
    ``position`` (a delivery or a replay) or a ``reset`` (a replay's request)."""
    sql = (
        f"SELECT max(at) AS at, count() AS n FROM {check_identifier(database)}.{STATE_TABLE}"
        " WHERE stream = {p_stream:String} AND kind = {p_kind:String}"
    )
    return Statement(sql, {"p_stream": stream, "p_kind": kind})


def lease_claims(database: str, stream: str, term: int) -> Statement:
    sql = (
        f"SELECT value AS holder, min(at) AS claimed FROM {check_identifier(database)}.{STATE_TABLE}"
        " WHERE stream = {p_stream:String} AND kind = 'lease' AND key = {l_term:String}"
        " AND value NOT IN (SELECT value FROM "
        + f"{check_identifier(database)}.{STATE_TABLE}"
        + " WHERE stream = {p_stream:String} AND kind = 'release' AND key = {l_term:String})"
        " GROUP BY holder ORDER BY claimed, holder"
    )
    return Statement(sql, {"p_stream": stream, "l_term": str(term)})


def state_table(stream: str, kind: str, items: list[tuple[str, str]], now: dt.datetime) -> pa.Table:
    """Rows of a stream's bookkeeping (inserted, never changed)."""
    return pa.table(
        {
            "stream": pa.array([stream] * len(items), pa.string()),
            "kind": pa.array([kind] * len(items), pa.string()),
            "key": pa.array([k for k, _ in items], pa.string()),
            "value": pa.array([v for _, v in items], pa.string()),
            "at": pa.array([now] * len(items), pa.timestamp("us", tz="UTC")),
        }
    )
