"""Many synthetic events straight into a store (bypassing ingest: this is for export scale
tests and benchmarks). Run as ``python admin_bulk.py DATA_DIR N`` to fill a chDB directory."""

from __future__ import annotations

import datetime as dt
import sys
import uuid

import numpy as np
import pyarrow as pa

from receiver.model import ARROW_SCHEMA

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
BATCH = 100_000


def bulk_table(n: int, start: int = 0) -> pa.Table:
    """Rows ``start .. start+n``: one per second from BASE, half acme, half globex, every fifth with
    a changes diff (including a formula), every seventh with a reason starting with '-'."""
    idx = np.arange(start, start + n)
    strings = lambda values: pa.array(values, type=pa.string())  # noqa: E731
    same = lambda value: pa.array([value] * n, type=pa.string())  # noqa: E731
    ts = (np.datetime64("2026-01-01T00:00:00") + idx.astype("timedelta64[s]")).astype("datetime64[us]")
    changes = '{"amount":{"new":12,"old":10},"note":{"new":"=SUM(A1)","old":"x, \\"y\\""}}'
    cols = {
        "id": strings([str(uuid.UUID(int=int(i) + 1)) for i in idx]),
        "tenant_id": strings(np.where(idx % 2 == 0, "acme", "globex")),
        "user_id": strings([f"user-{i % 500}" for i in idx]),
        "actor_type": same("user"),
        "action": strings(np.array(["read", "update", "login", "delete"])[idx % 4]),
        "outcome": strings(np.array(["success", "failure", "denied"])[idx % 3]),
        "resource_type": same("document"),
        "resource_id": strings([f"doc-{i % 9973}" for i in idx]),
        "event_name": same("audit.document.read"),
        "changes": strings(np.where(idx % 5 == 0, changes, "")),
        "ip_address": strings([f"10.0.{(i // 256) % 256}.{i % 256}" for i in idx]),
        "user_agent": same("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"),
        "created_at": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
        "received_at": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
        "service_name": same("billing"),
        "trace_id": same("0af7651916cd43dd8448eb211c80319c"),
        "span_id": same("b7ad6b7169203331"),
        "session_id": same(""),
        "http_method": same("GET"),
        "http_route": same("/docs/{id}"),
        "http_status": pa.array(np.full(n, 200), type=pa.uint16()),
        "reason": strings(np.where(idx % 7 == 0, "-refund", "ok")),
        "attributes": pa.array([[("ticket", "INC-1")]] * n, type=pa.map_(pa.string(), pa.string())),
        "retain_until": pa.array([dt.date(2099, 1, 1)] * n, type=pa.date32()),
        "hot_until": pa.array([dt.date(2099, 1, 1)] * n, type=pa.date32()),
    }
    return pa.table(cols, schema=ARROW_SCHEMA)


def fill(store: object, total: int) -> None:
    for start in range(0, total, BATCH):
        store.insert(bulk_table(min(BATCH, total - start), start))  # type: ignore[attr-defined]


if __name__ == "__main__":
    from receiver.store.chdb_store import ChdbStore

    target = ChdbStore(sys.argv[1])
    fill(target, int(sys.argv[2]))
    target.close()
