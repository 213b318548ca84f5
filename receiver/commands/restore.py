"""``otel-audit restore --tenant T --since D --until D``: load archived days back into
``audit_events_restored`` for an investigation, each day verified against its manifest."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from receiver.commands.common import CliError, add_source_flags
from receiver.commands.retention_common import RichProgress, local_service, retention_errors, server_call


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("restore", help="load archived days into audit_events_restored (verified)")
    add_source_flags(p)
    p.add_argument("--tenant", required=True, help="the tenant whose archived days to load")
    p.add_argument("--since", required=True, help="first day (ISO 8601 date, inclusive)")
    p.add_argument("--until", required=True, help="end day (ISO 8601 date, exclusive)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from receiver.admin.retention_api import parse_day
    from receiver.retention.service import RetentionError

    try:
        since, until = parse_day(args.since, "--since"), parse_day(args.until, "--until")
    except RetentionError as exc:
        raise CliError(str(exc)) from exc
    report: dict[str, Any]
    if args.server:
        body = {"tenant": args.tenant, "since": since.isoformat(), "until": until.isoformat()}
        report = server_call(args, "POST", "/api/restore", body=body)
    else:
        from receiver.retention.restore import restore

        try:
            with local_service(args) as service, RichProgress() as progress:
                report = dataclasses.asdict(restore(service, args.tenant, since, until, progress))
        except retention_errors() as exc:
            raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"restored {report['rows']} events of {report['tenant']} from {len(report['days'])} archived "
            f"day(s) into {report['table']} ({report['already_restored']} already there); "
            f"verified against the manifests"
        )
    return 0
