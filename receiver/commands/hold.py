"""``otel-audit hold add|remove|list [--tenant T] [--reason R]``: legal holds stop every expiry
and deletion of a tenant's events (store TTL and archive) while they are set."""

from __future__ import annotations

import argparse
import json
from typing import Any

from receiver.commands.common import CliError, add_source_flags
from receiver.commands.retention_common import local_service, retention_errors, server_call


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hold", help="set, lift or list legal holds")
    p.add_argument(
        "action", choices=("add", "remove", "list"), help="add or remove a tenant's hold, or list the holds"
    )
    add_source_flags(p)
    p.add_argument("--tenant", help="the tenant (required for add and remove)")
    p.add_argument("--reason", default="", help="why (a case or ticket reference); kept with the hold")
    p.add_argument("--actor", default="cli", help="who sets it, for the audit trail (store mode)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table/summary")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.action != "list" and not args.tenant:
        raise CliError(f"hold {args.action} needs --tenant")
    result = _server(args) if args.server else _local(args)
    if args.action == "list":
        holds = result["holds"]
        if args.tenant:
            holds = [h for h in holds if h["tenant_id"] == args.tenant]
        if args.json:
            print(json.dumps({"holds": holds}, indent=2))
        elif not holds:
            print("no legal holds")
        for h in holds if not args.json else ():
            print(f"{h['tenant_id']}\tsince {h['since']}\tby {h['actor']}\t{h['reason']}")
        return 0
    verb = "set" if args.action == "add" else "lifted"
    state = verb if result["changed"] else ("already set" if args.action == "add" else "not set")
    print(json.dumps(result) if args.json else f"legal hold on {args.tenant}: {state}")
    return 0


def _server(args: argparse.Namespace) -> dict[str, Any]:
    if args.action == "list":
        return server_call(args, "GET", "/api/holds")
    if args.action == "add":
        return server_call(args, "POST", "/api/holds", body={"tenant": args.tenant, "reason": args.reason})
    return server_call(args, "DELETE", f"/api/holds/{args.tenant}", params={"reason": args.reason})


def _local(args: argparse.Namespace) -> dict[str, Any]:
    import dataclasses

    try:
        with local_service(args) as service:
            if args.action == "list":
                return {"holds": [dataclasses.asdict(h) for h in service.holds()]}
            changed = service.set_hold(args.tenant, args.action == "add", args.reason, args.actor)
            return {"tenant": args.tenant, "changed": changed}
    except retention_errors() as exc:
        raise CliError(str(exc)) from exc
