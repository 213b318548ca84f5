"""``otel-audit retention run|status``: archive and expire events by policy, or show per tenant
what is hot, what is archived, what expires next and which legal holds are set."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from receiver.commands.common import CliError, add_source_flags
from receiver.commands.retention_common import RichProgress, local_service, retention_errors, server_call

STATUS_COLUMNS = (
    ("tenant", "tenant"),
    ("policy", "policy"),
    ("hot_rows", "hot rows"),
    ("hot_range", "hot range"),
    ("archived_days", "archived days"),
    ("archived_size", "archived"),
    ("next_expiry", "next expiry"),
    ("hold", "legal hold"),
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retention", help="archive and expire events by policy (run), or show status")
    p.add_argument(
        "action",
        choices=("run", "status"),
        help="run: archive and expire events by policy, now; status: per tenant what is hot, what is "
        "archived, what expires next and which legal holds are set",
    )
    add_source_flags(p)
    p.add_argument("--tenant", help="status: only this tenant")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table/summary")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "run":
        report = _run(args)
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(
                f"archived {report['rows_archived']} events ({report['days_archived']} day files) from "
                f"{len(report['months_archived'])} tenant-partitions; deleted "
                f"{len(report['archive_days_deleted'])} expired archive days; "
                f"TTL {'updated' if report['ttl_applied'] else 'unchanged'}; "
                f"legal holds: {', '.join(report['held']) or 'none'}"
            )
        return 0
    rows = _status(args)
    if args.json:
        print(json.dumps({"tenants": rows}, indent=2))
    else:
        print_status(rows)
    return 0


def _run(args: argparse.Namespace) -> dict[str, Any]:
    if args.server:
        return server_call(args, "POST", "/api/retention/run")
    try:
        with local_service(args) as service, RichProgress() as progress:
            return dataclasses.asdict(service.run(progress))
    except retention_errors() as exc:
        raise CliError(str(exc)) from exc


def _status(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.server:
        params = {"tenant": args.tenant} if args.tenant else None
        return server_call(args, "GET", "/api/retention/status", params=params)["tenants"]
    from receiver.retention.restore import status

    try:
        with local_service(args) as service:
            return status(service, (args.tenant,) if args.tenant else None)
    except retention_errors() as exc:
        raise CliError(str(exc)) from exc


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def print_status(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(header_style="bold")
    for _, title in STATUS_COLUMNS:
        table.add_column(title, overflow="fold")
    for r in rows:
        hold = r["legal_hold"]
        cells = {
            "tenant": r["tenant"],
            "policy": f"{r['preset'] or ''} hot {r['hot_days']}d / keep {r['retain_days']}d".strip(),
            "hot_rows": str(r["hot_rows"]),
            "hot_range": f"{(r['hot_oldest'] or '')[:10]} … {(r['hot_newest'] or '')[:10]}"
            if r["hot_rows"]
            else "",
            "archived_days": f"{r['archived_days']} ({r['archived_first_day'] or ''} … {r['archived_last_day'] or ''})"
            if r["archived_days"]
            else "0",
            "archived_size": f"{r['archived_rows']} events, {_size(r['archived_bytes'])}",
            "next_expiry": r["next_expiry"] or ("held" if hold else ""),
            "hold": f"since {hold['since'][:10]}: {hold['reason']}" if hold else "",
        }
        table.add_row(*(cells[key] for key, _ in STATUS_COLUMNS))
    Console().print(table)
