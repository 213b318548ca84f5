"""``otel-audit query``: search events, newest first, as a table, CSV or JSON lines."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from receiver.commands.common import (
    CliError,
    add_filter_flags,
    add_source_flags,
    filters_from_args,
    iter_events,
)

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


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("query", help="search events, newest first")
    add_source_flags(p)
    add_filter_flags(p)
    p.add_argument("--limit", type=int, default=100, help="at most this many events (default 100)")
    p.add_argument(
        "--format", choices=("table", "csv", "jsonl"), default="table", help="output format (default table)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from receiver.formats import csv_lines, jsonl_lines

    if not 1 <= args.limit <= 1_000_000:
        raise CliError("--limit must be between 1 and 1000000")
    rows = iter_events(args, filters_from_args(args), args.limit)
    if args.format == "csv":
        sys.stdout.writelines(csv_lines(rows))
    elif args.format == "jsonl":
        sys.stdout.writelines(jsonl_lines(rows))
    else:
        print_table(list(rows))
    return 0


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from receiver.pipeline.flags import visible

    table = Table(header_style="bold")
    for name in TABLE_COLUMNS:
        table.add_column(name, overflow="fold")
    for row in rows:
        # Text, not markup: a value is shown as sent, its control characters as visible marks
        table.add_row(*(Text(visible(str(row.get(name) or ""))) for name in TABLE_COLUMNS))
    console = Console()
    console.print(table)
    console.print(f"{len(rows)} event(s)")
