"""The ``otel-audit`` command (SPEC section 3).

Commands that read data work against a store directly (``--store``) or, while ``serve`` holds
an embedded store, against the running server (``--server URL --token T``). Errors end with
exit code 2 and one readable line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

from receiver.filters import FILTER_NAMES, EventFilter, FilterError, filter_to_params, parse_filters

EXIT_ERROR = 2
TABLE_COLUMNS = (
    "created_at",
    "tenant_id",
    "user_id",
    "action",
    "outcome",
    "resource_type",
    "resource_id",
    "ip_address",
)


class CliError(Exception):
    """Ends the command with one line on stderr."""


def add_filter_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    for name in FILTER_NAMES:
        flag = "--" + name.replace("_", "-")
        extra = {
            "since": " (ISO 8601, inclusive)",
            "until": " (ISO 8601, exclusive)",
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
        default=os.environ.get("OTEL_AUDIT_TOKEN"),
        help="admin token for --server (or OTEL_AUDIT_TOKEN)",
    )


def filters_from_args(args: argparse.Namespace) -> EventFilter:
    raw = {
        name: getattr(args, f"f_{name}") for name in FILTER_NAMES if getattr(args, f"f_{name}") is not None
    }
    try:
        return parse_filters(raw)
    except FilterError as exc:
        raise CliError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-audit", description="Compliance-grade audit logs on OpenTelemetry"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the receiver: OTLP/gRPC, admin API")
    serve.add_argument("--config", help="YAML config file (SPEC section 4)")
    serve.add_argument("--store", help="store URL (default chdb://./otel-audit-data)")
    serve.add_argument("--grpc-listen", help="OTLP/gRPC address (default 127.0.0.1:4317)")
    serve.add_argument("--http-listen", help="OTLP/HTTP address (default 127.0.0.1:4318)")
    serve.add_argument("--admin-listen", help="admin API/UI address (default 127.0.0.1:8318)")

    query = sub.add_parser("query", help="search events, newest first")
    add_source_flags(query)
    add_filter_flags(query)
    query.add_argument("--limit", type=int, default=100, help="at most this many events (default 100)")
    query.add_argument("--format", choices=("table", "csv", "jsonl"), default="table")

    demo = sub.add_parser("demo", help="receiver on an embedded store + an instrumented sample app + traffic")
    demo.add_argument(
        "--data", default="./otel-audit-demo-data", help="embedded store directory for the demo"
    )
    demo.add_argument("--rounds", type=int, default=20, help="rounds of traffic (default 20)")
    demo.add_argument("--admin-listen", default="127.0.0.1:8318")
    demo.add_argument("--grpc-listen", default="127.0.0.1:4317")
    demo.add_argument("--exit", action="store_true", help="exit after the summary instead of serving on")
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from receiver.config import ConfigError, load_config
    from receiver.server import Receiver
    from receiver.store.base import StoreUnavailable

    try:
        config = load_config(
            args.config,
            store=args.store,
            grpc_listen=args.grpc_listen,
            http_listen=args.http_listen,
            admin_listen=args.admin_listen,
        )
        receiver = Receiver(config)
        receiver.start()
    except (ConfigError, StoreUnavailable, OSError) as exc:
        raise CliError(str(exc)) from exc
    print(
        f"otel-audit serving: OTLP/gRPC {config.listen.grpc}, admin http://{config.listen.admin} "
        f"(store {config.store})",
        flush=True,
    )
    receiver.serve_forever()
    return 0


def _store_url(args: argparse.Namespace) -> str:
    from receiver.config import ConfigError, load_config

    if args.store:
        return args.store
    try:
        return load_config(args.config).store
    except ConfigError as exc:
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
    from receiver.store import open_store
    from receiver.store.base import StoreUnavailable
    from receiver.store.chdb_store import StoreLocked

    url = _store_url(args)
    try:
        store = open_store(url)
    except StoreLocked as exc:
        raise CliError(f"{exc}: use --server URL --token T while it runs") from exc
    except StoreUnavailable as exc:
        raise CliError(str(exc)) from exc
    try:
        yield from store.search(flt, limit)
    finally:
        store.close()


def cmd_query(args: argparse.Namespace) -> int:
    from receiver.formats import csv_lines, jsonl_lines

    if not 1 <= args.limit <= 1_000_000:
        raise CliError("--limit must be between 1 and 1000000")
    flt = filters_from_args(args)
    rows = iter_events(args, flt, args.limit)
    out = sys.stdout
    if args.format == "csv":
        for chunk in csv_lines(rows):
            out.write(chunk)
    elif args.format == "jsonl":
        for chunk in jsonl_lines(rows):
            out.write(chunk)
    else:
        print_table(list(rows))
    return 0


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    for name in TABLE_COLUMNS:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(str(row.get(name) or "") for name in TABLE_COLUMNS))
    console = Console()
    console.print(table)
    console.print(f"{len(rows)} event(s)")


def cmd_demo(args: argparse.Namespace) -> int:
    from receiver.demo.run import run_demo

    return run_demo(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    handlers = {"serve": cmd_serve, "query": cmd_query, "demo": cmd_demo}
    try:
        return handlers[args.command](args)
    except CliError as exc:
        print(f"otel-audit {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
