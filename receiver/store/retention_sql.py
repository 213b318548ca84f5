"""Every statement of the retention job (archive, expiry, legal hold, restore), beside ``sql.py``.

Table names are constants and the database name a checked identifier; tenants, months, days
and hold lists travel as ``{name:Type}`` parameters, also inside ``ALTER ... MODIFY TTL`` (the
engine substitutes them as typed literals into the stored TTL expression).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from receiver.store.sql import EVENTS_TABLE, Statement, check_identifier

#: where a due partition waits while it is written to the archive (same structure, no TTL)
STAGING_TABLE = "audit_events_archiving"
#: where ``otel-audit restore`` loads archived days for an investigation
RESTORED_TABLE = "audit_events_restored"
HOLDS_TABLE = "legal_holds"
TTL_STATE_TABLE = "retention_ttl"
#: a partition of the events table: the month (YYYYMM) of hot_until
_PARTITION = "{p_month:UInt32}"
#: ClickHouse server: wait for the mutation on every replica; chDB treats 2 as 1
_SYNC = "SETTINGS mutations_sync = 2"


def _t(database: str, table: str) -> str:
    return f"{check_identifier(database)}.{table}"


def side_tables(database: str) -> list[Statement]:
    """The staging and restored tables copy the events table's columns and indexes (MOVE
    PARTITION requires the same structure) but carry no TTL."""
    events = _t(database, EVENTS_TABLE)
    return [
        Statement(
            f"CREATE TABLE IF NOT EXISTS {_t(database, STAGING_TABLE)} AS {events}"
            " ENGINE = MergeTree PARTITION BY toYYYYMM(hot_until)"
            " ORDER BY (tenant_id, created_at, id) SETTINGS index_granularity = 8192"
        ),
        Statement(
            f"CREATE TABLE IF NOT EXISTS {_t(database, RESTORED_TABLE)} AS {events}"
            " ENGINE = ReplacingMergeTree PARTITION BY (tenant_id, toYYYYMM(created_at))"
            " ORDER BY (tenant_id, created_at, id) SETTINGS index_granularity = 8192"
        ),
    ]


def drop_table(database: str, table: str) -> Statement:
    return Statement(f"DROP TABLE IF EXISTS {_t(database, table)}")


def columns(database: str, table: str) -> Statement:
    return Statement(
        "SELECT name, type FROM system.columns WHERE database = {c_db:String} AND table = {c_table:String}"
        " ORDER BY position",
        {"c_db": check_identifier(database), "c_table": table},
    )


def add_column(database: str, table: str, name: str, type_: str) -> Statement:
    """Column name and type come from system.columns of our own events table, not from users."""
    check_identifier(name)
    return Statement(f"ALTER TABLE {_t(database, table)} ADD COLUMN IF NOT EXISTS {name} {type_}")


# -- TTL and legal holds ---------------------------------------------------------------
def modify_ttl(
    database: str, tenants: Sequence[str], days: Sequence[int], default_days: int, held: Sequence[str]
) -> Statement:
    """Final expiry from the *current* policies, skipping held tenants. Modifying the TTL
    re-materializes it, so existing rows follow a policy change or a hold at once."""
    return Statement(
        f"ALTER TABLE {_t(database, EVENTS_TABLE)} MODIFY TTL toDate(created_at)"
        " + toIntervalDay(transform(toString(tenant_id), {t_tenants:Array(String)},"
        " {t_days:Array(UInt32)}, {t_default:UInt32}))"
        " DELETE WHERE NOT has({t_held:Array(String)}, toString(tenant_id)) " + _SYNC,
        {"t_tenants": list(tenants), "t_days": list(days), "t_default": default_days, "t_held": list(held)},
    )


def materialize_ttl(database: str, month: int) -> Statement:
    """Apply the TTL to one partition now (otherwise it waits for a background TTL merge)."""
    return Statement(
        f"ALTER TABLE {_t(database, EVENTS_TABLE)} MATERIALIZE TTL IN PARTITION {_PARTITION} {_SYNC}",
        {"p_month": month},
    )


def record_ttl_spec(database: str, spec: str) -> Statement:
    return Statement(
        f"INSERT INTO {_t(database, TTL_STATE_TABLE)} (applied_at, spec) SELECT now64(6), {{s_spec:String}}",
        {"s_spec": spec},
    )


def record_hold(database: str, tenant: str, held: bool, reason: str, actor: str) -> Statement:
    return Statement(
        f"INSERT INTO {_t(database, HOLDS_TABLE)} (tenant_id, held, reason, actor, changed_at)"
        " SELECT {h_tenant:String}, {h_held:UInt8}, {h_reason:String}, {h_actor:String}, now64(6)",
        {"h_tenant": tenant, "h_held": int(held), "h_reason": reason, "h_actor": actor},
    )


def last_ttl_spec(database: str) -> Statement:
    return Statement(f"SELECT spec FROM {_t(database, TTL_STATE_TABLE)} ORDER BY applied_at DESC LIMIT 1")


def current_holds(database: str) -> Statement:
    return Statement(
        "SELECT tenant_id, argMax(reason, changed_at) AS reason, argMax(actor, changed_at) AS actor,"
        " max(changed_at) AS since"
        f" FROM {_t(database, HOLDS_TABLE)} GROUP BY tenant_id HAVING argMax(held, changed_at) = 1"
        " ORDER BY tenant_id"
    )


# -- the hot store and the staging table ----------------------------------------------------
def partitions(database: str, table: str = EVENTS_TABLE) -> Statement:
    """Per partition (hot_until month) and tenant: rows and the oldest day. Partitions are the
    units the archive job moves."""
    return Statement(
        "SELECT toYYYYMM(hot_until) AS month, tenant_id, count() AS n, toDate(min(created_at)) AS oldest"
        f" FROM {_t(database, table)} GROUP BY month, tenant_id ORDER BY month, tenant_id"
    )


def move_to_staging(database: str, month: int) -> Statement:
    return Statement(
        f"ALTER TABLE {_t(database, EVENTS_TABLE)} MOVE PARTITION {_PARTITION}"
        f" TO TABLE {_t(database, STAGING_TABLE)}",
        {"p_month": month},
    )


def drop_staged(database: str, month: int) -> Statement:
    return Statement(
        f"ALTER TABLE {_t(database, STAGING_TABLE)} DROP PARTITION {_PARTITION}", {"p_month": month}
    )


def staged_days(database: str, month: int) -> Statement:
    """The tenant-days in one staged partition (the archive's files are per tenant per day)."""
    return Statement(
        "SELECT tenant_id, toDate(created_at) AS day, count() AS n"
        f" FROM {_t(database, STAGING_TABLE)} WHERE toYYYYMM(hot_until) = {{p_month:UInt32}}"
        " GROUP BY tenant_id, day ORDER BY tenant_id, day",
        {"p_month": month},
    )


def day_rows(database: str, table: str, tenant: str, day: dt.date, final: bool = False) -> Statement:
    """Every column of one tenant-day, in a stable order (the archive file's row order)."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    return Statement(
        f"SELECT * FROM {_t(database, table)}{' FINAL' if final else ''}"
        " WHERE tenant_id = {p_tenant:String} AND created_at >= {p_start:DateTime64(6, 'UTC')}"
        " AND created_at < {p_end:DateTime64(6, 'UTC')} ORDER BY created_at, id",
        {"p_tenant": tenant, "p_start": start, "p_end": start + dt.timedelta(days=1)},
    )


def day_count(database: str, table: str, tenant: str, day: dt.date, final: bool = False) -> Statement:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    return Statement(
        f"SELECT count() AS n FROM {_t(database, table)}{' FINAL' if final else ''}"
        " WHERE tenant_id = {p_tenant:String} AND created_at >= {p_start:DateTime64(6, 'UTC')}"
        " AND created_at < {p_end:DateTime64(6, 'UTC')}",
        {"p_tenant": tenant, "p_start": start, "p_end": start + dt.timedelta(days=1)},
    )


def hot_summary(database: str) -> Statement:
    return Statement(
        "SELECT tenant_id, count() AS n, min(created_at) AS oldest, max(created_at) AS newest"
        f" FROM {_t(database, EVENTS_TABLE)} GROUP BY tenant_id ORDER BY tenant_id"
    )
