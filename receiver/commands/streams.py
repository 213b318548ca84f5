"""``otel-audit streams status|replay`` (SPEC section 11): a running receiver's log streams
(position, lag, last error, deliveries) and a replay of a stream from a time, via ``--server``;
``status`` without ``--server`` reads the config's streams' positions and lag from the store."""

from __future__ import annotations

import argparse
import json
from typing import Any

from receiver.commands.common import CliError, add_source_flags, open_store_for_cli
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
    if not args.server and args.action == "replay":
        raise CliError("streams replay needs --server (the running receiver that delivers them)")
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
    if args.server:
        streams: list[dict[str, Any]] = server_call(args, "GET", "/api/streams")["streams"]
    else:
        streams = _from_store(args)
    if args.json:
        print(json.dumps({"streams": streams}, indent=2))
        return 0
    if not streams:
        print("no streams configured")
    for s in streams:
        print(
            f"{s['name']}\t{s['kind']}\tlag {s['lag_events']} events / {s['lag_seconds']:g} s"
            + (
                f"\tdelivered {s['delivered_events']}\tfailures {s['failures']}"
                if "delivered_events" in s  # this receiver's counters (--server)
                else f"\tlast delivery {s.get('last_delivery_at') or 'never'}"
            )
            + (f"\tlast error: {s['last_error']}" if s.get("last_error") else "")
            + ("\tBACKLOG OVER LIMIT" if s["backlog_exceeded"] else "")
        )
    return 0


def _from_store(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The config's streams, read from its store while no receiver holds it (``serve`` running:
    the store is locked and the error says to use ``--server``)."""
    from receiver.config import ConfigError, load_config
    from receiver.streams.service import offline_status

    if not args.config:
        raise CliError("streams status needs --server URL, or --config FILE (its streams: and store:)")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    store = open_store_for_cli(args)
    try:
        return offline_status(store, config.streams)
    finally:
        store.close()
