"""Synthetic audit events generated inside the engine (``INSERT … SELECT … FROM numbers()``), for
benchmarks and load tests: millions of realistic rows in seconds, without a Python loop.

Deterministic for a given ``seed``: tenants ``tenant-00``…, users ``user-N``, resource ids
``res-N``, client addresses ``10.x.y.z``, event times spread uniformly over ``days`` before
``end``; about one event in 500 has a ``reason`` containing the word "refund".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from receiver.store.sql import EVENTS_TABLE, Statement, check_identifier


@dataclass(frozen=True, slots=True)
class SyntheticSpec:
    rows: int
    tenants: int = 50
    days: int = 365
    users_per_tenant: int = 2_000
    resources: int = 1_000_000
    addresses: int = 200_000
    end: dt.datetime = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    seed: int = 1
    #: created_at + hot_days = hot_until (the partition key): the retention default
    hot_days: int = 90


def insert_statement(database: str, spec: SyntheticSpec, offset: int = 0) -> Statement:
    """Rows ``offset`` … ``offset + spec.rows - 1`` of the synthetic data set."""
    db = check_identifier(database)
    sql = f"""
INSERT INTO {db}.{EVENTS_TABLE}
    (id, tenant_id, user_id, actor_type, action, outcome, resource_type, resource_id, event_name,
     changes, ip_address, user_agent, created_at, received_at, service_name, trace_id, span_id,
     session_id, http_method, http_route, http_status, reason, attributes, retain_until, hot_until)
SELECT
    reinterpretAsUUID(reverse(unhex(lower(hex(sipHash128(k, {{seed:UInt64}})))))) AS id,
    concat('tenant-', leftPad(toString(k % {{tenants:UInt32}}), 2, '0')) AS tenant_id,
    concat('user-', toString(sipHash64(k, 1, {{seed:UInt64}}) % {{users:UInt32}})) AS user_id,
    'user' AS actor_type,
    ['read', 'read', 'read', 'update', 'create', 'delete', 'login', 'export'][k % 8 + 1] AS action,
    if(k % 50 = 0, 'denied', if(k % 23 = 0, 'failure', 'success')) AS outcome,
    ['document', 'invoice', 'patient', 'payment', 'role'][intDiv(k, 8) % 5 + 1] AS resource_type,
    concat('res-', toString(sipHash64(k, 2, {{seed:UInt64}}) % {{resources:UInt32}})) AS resource_id,
    concat('audit.', resource_type, '.', action) AS event_name,
    if(action IN ('update', 'create'),
       concat('{{"status":{{"old":"draft","new":"sent"}},"amount":{{"old":', toString(k % 9973),
              ',"new":', toString(k % 9967), '}}}}'), '') AS changes,
    IPv4NumToString(toUInt32(167772160 + sipHash64(k, 3, {{seed:UInt64}}) % {{addresses:UInt32}})) AS ip_address,
    'Mozilla/5.0 (X11; Linux x86_64) synthetic/1.0' AS user_agent,
    fromUnixTimestamp64Micro(toInt64({{end_us:Int64}} - sipHash64(k, 4, {{seed:UInt64}}) % {{span_us:UInt64}}), 'UTC')
        AS created_at,
    created_at + toIntervalSecond(1) AS received_at,
    ['billing', 'records', 'identity'][k % 3 + 1] AS service_name,
    lower(hex(sipHash128(k, 5))) AS trace_id,
    lower(hex(sipHash64(k, 6))) AS span_id,
    concat('s-', toString(intDiv(k, 20))) AS session_id,
    'GET' AS http_method,
    '/resources/{{id}}' AS http_route,
    toUInt16(if(outcome = 'success', 200, 403)) AS http_status,
    if(k % 500 = 7, 'customer refund approved by support', '') AS reason,
    map('ticket', concat('INC-', toString(k % 10007))) AS attributes,
    toDate(created_at) + 3650 AS retain_until,
    toDate(created_at) + {{hot_days:UInt32}} AS hot_until
FROM (SELECT number + {{offset:UInt64}} AS k FROM numbers({{rows:UInt64}}))
"""
    end_us = int(spec.end.timestamp() * 1_000_000)
    params = {
        "seed": spec.seed,
        "tenants": spec.tenants,
        "users": spec.users_per_tenant * spec.tenants,
        "resources": spec.resources,
        "addresses": spec.addresses,
        "end_us": end_us,
        "span_us": spec.days * 86_400 * 1_000_000,
        "offset": offset,
        "rows": spec.rows,
        "hot_days": spec.hot_days,
    }
    return Statement(sql, params)
