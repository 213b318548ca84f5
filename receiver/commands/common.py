"""What several commands share: the error that ends a command, filter flags, and reading
events from a store or from a running server."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from typing import Any

from receiver.filters import (
    FILTER_NAMES,
    MATCH_NAMES,
    EventFilter,
    FilterError,
    filter_to_params,
    parse_filters,
)

#: the CLI's admin token; OTEL_AUDIT_TOKEN is the app's ingest token (once both, still read here)
ENV_ADMIN_TOKEN = "OTEL_AUDIT_ADMIN_TOKEN"
ENV_OLD_TOKEN = "OTEL_AUDIT_TOKEN"


def resolve_admin_token(args: argparse.Namespace, environ: dict[str, str] | None = None) -> None:
    """``--server`` without ``--token`` or OTEL_AUDIT_ADMIN_TOKEN: fall back to the old name,
    OTEL_AUDIT_TOKEN, with a deprecation line (it is the apps' ingest token now)."""
    env = os.environ if environ is None else environ
    if getattr(args, "server", None) and not getattr(args, "token", None) and env.get(ENV_OLD_TOKEN):
        args.token = env[ENV_OLD_TOKEN]
        print(
            f"otel-audit: {ENV_OLD_TOKEN} as the admin token is deprecated (it is the apps' ingest "
            f"token): set {ENV_ADMIN_TOKEN}",
            file=sys.stderr,
        )


class CliError(Exception):
    """Ends the command with exit code 2 and this one line on stderr."""


def add_filter_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    for name in FILTER_NAMES:
        flag = "--" + name.replace("_", "-")
        if name in MATCH_NAMES:
            extra = " (repeat to OR; !VALUE excludes, VALUE* is a prefix" + (
                ", or a CIDR)" if name == "ip" else ")"
            )
            group.add_argument(
                flag, dest=f"f_{name}", metavar="VALUE", action="append", help=f"{name}{extra}"
            )
            continue
        extra = {
            "since": " (ISO 8601 or now-15m / now-24h / now-7d, inclusive)",
            "until": " (ISO 8601 or now / now-1h, exclusive)",
            "q": " (substring of reason, changes or attributes)",
        }.get(name, "")
        group.add_argument(flag, dest=f"f_{name}", metavar="VALUE", help=f"{name}{extra}")


def add_source_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config (its store: is used when --store is not given)")
    parser.add_argument("--store", help="chdb:///path, chdb://./path or clickhouse://user:pass@host:8123/db")
    parser.add_argument(
        "--server", help="URL of a running `otel-audit serve` admin API, e.g. http://127.0.0.1:8318"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(ENV_ADMIN_TOKEN),
        help=f"admin token for --server (or {ENV_ADMIN_TOKEN})",
    )


def filters_from_args(args: argparse.Namespace) -> EventFilter:
    raw = {
        name: getattr(args, f"f_{name}") for name in FILTER_NAMES if getattr(args, f"f_{name}") is not None
    }
    try:
        return parse_filters(raw)
    except FilterError as exc:
        raise CliError(str(exc)) from exc


def store_url(args: argparse.Namespace) -> str:
    from receiver.config import ConfigError, load_config

    if getattr(args, "store", None):
        return args.store
    try:
        return load_config(getattr(args, "config", None)).store
    except ConfigError as exc:
        raise CliError(str(exc)) from exc


def open_store_for_cli(args: argparse.Namespace) -> Any:
    """The store named by --store/--config, with a readable error when serve holds it."""
    from receiver.store import open_store
    from receiver.store.base import StoreUnavailable
    from receiver.store.chdb_store import StoreLocked

    url = store_url(args)
    try:
        return open_store(url)
    except StoreLocked as exc:
        raise CliError(f"{exc}: use --server URL --token T while it runs") from exc
    except (StoreUnavailable, ValueError) as exc:
        raise CliError(str(exc)) from exc


def iter_events(args: argparse.Namespace, flt: EventFilter, limit: int) -> Iterator[dict[str, Any]]:
    """Events from a running server (--server) or straight from the store."""
    if args.server:
        from receiver.client import AdminClient, AdminClientError

        client = AdminClient(args.server, args.token)
        try:
            yield from client.iter_events(filter_to_params(flt), limit)
        except AdminClientError as exc:
            raise CliError(str(exc)) from exc
        finally:
            client.close()
        return
    store = open_store_for_cli(args)
    try:
        yield from store.search(flt, limit)
    finally:
        store.close()
