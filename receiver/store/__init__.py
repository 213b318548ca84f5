"""Stores: ``open_store(url)`` picks the engine from the URL scheme (SPEC section 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from receiver.store.base import AuditStore, SqlStore, StoreUnavailable
from receiver.store.sql import DEFAULT_DATABASE

DEFAULT_STORE_URL = "chdb://./otel-audit-data"

__all__ = [
    "AuditStore",
    "SqlStore",
    "StoreUnavailable",
    "DEFAULT_STORE_URL",
    "open_store",
    "chdb_path",
    "data_subdirectory",
]


def chdb_path(url: str) -> Path:
    """``chdb:///abs/path`` → /abs/path; ``chdb://./rel/path`` → ./rel/path (from the cwd)."""
    rest = url[len("chdb://") :].split("?", 1)[0]
    return Path(rest) if rest.startswith("/") else Path.cwd() / rest


def data_subdirectory(store: Any, name: str) -> Path | None:
    """``<data dir>/<name>`` beside an embedded store's data (``…/<name>/<database>`` for a
    database other than the default); None for a ClickHouse server store, which has no data
    directory here."""
    path = getattr(store, "path", None)
    if not path:
        return None
    base = Path(path) / name
    database = getattr(store, "database", DEFAULT_DATABASE)
    return base if database == DEFAULT_DATABASE else base / database


def _database(url: str) -> str:
    """``?database=name`` picks another database than ``audit`` (tests give each their own)."""
    values = parse_qs(urlparse(url).query).get("database")
    return values[-1] if values else DEFAULT_DATABASE


def open_store(url: str = DEFAULT_STORE_URL) -> AuditStore:
    scheme = urlparse(url).scheme
    if scheme == "chdb":
        from receiver.store.chdb_store import ChdbStore

        return ChdbStore(chdb_path(url), database=_database(url))
    if scheme in ("clickhouse", "clickhouses"):
        from receiver.store.clickhouse_store import ClickHouseStore

        return ClickHouseStore(url)
    raise ValueError(f"unknown store URL scheme {scheme!r}: use chdb://, clickhouse:// or clickhouses://")
