"""``otel-audit streams status|replay`` (SPEC section 11): a running receiver's log streams
(position, lag, last error, deliveries) and a replay of a stream from a time, via ``--server``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from receiver.commands.common import CliError, add_source_flags
from receiver.commands.retention_common import server_call


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("streams", help="log streams: status, or replay one from a time")
    p.add_argument("action", choices=("status", "replay"), help="show every stream, or replay one")
    p.add_argument("name", nargs="?", help="the stream (replay)")
    p.add_argument("--since", help="replay: ISO 8601 time or now-7d; events at or after it are sent again")
    add_source_flags(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.server:
        raise CliError("streams needs --server (the running receiver that delivers them)")
    if args.action == "replay":
        if not args.name or not args.since:
            raise CliError("streams replay needs a stream name and --since")
        result = server_call(args, "POST", f"/api/streams/{args.name}/replay", body={"since": args.since})
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            moved = result.get("positions", {})
            print(f"stream {args.name}: replaying from {result['since']} ({len(moved)} log(s) moved back)")
        return 0
    streams: list[dict[str, Any]] = server_call(args, "GET", "/api/streams")["streams"]
    if args.json:
        print(json.dumps({"streams": streams}, indent=2))
        return 0
    if not streams:
        print("no streams configured")
    for s in streams:
        print(
            f"{s['name']}\t{s['kind']}\tlag {s['lag_events']} events / {s['lag_seconds']:g} s"
            f"\tdelivered {s.get('delivered_events', 0)}\tfailures {s.get('failures', 0)}"
            + (f"\tlast error: {s['last_error']}" if s.get("last_error") else "")
            + ("\tBACKLOG OVER LIMIT" if s["backlog_exceeded"] else "")
        )
    return 0
