"""``otel-audit journal-ack [ID ...] [--all] --by NAME --reason TEXT``: acknowledge journal
tamper findings, so verify stops failing on them. Without IDs or ``--all`` it lists the
findings not yet acknowledged. The finding stays in the store; the acknowledgement (who, when,
why) is recorded beside it."""

from __future__ import annotations

import argparse

from receiver.commands.common import CliError, add_source_flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("journal-ack", help="list or acknowledge journal tamper findings")
    p.add_argument("ids", nargs="*", help="finding ids (as verify prints them)")
    add_source_flags(p)
    p.add_argument("--all", action="store_true", help="acknowledge every finding not yet acknowledged")
    p.add_argument("--by", default="", help="who acknowledges (required to acknowledge)")
    p.add_argument("--reason", default="", help="why: the investigation's outcome (required to acknowledge)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from receiver.commands.common import open_store_for_cli
    from receiver.journal.record import acknowledge, unacknowledged

    if args.server:
        raise CliError("journal-ack works on the store directly (--store or --config); stop serve for chDB")
    acking = bool(args.ids or args.all)
    if acking and (not args.by.strip() or not args.reason.strip()):
        raise CliError("acknowledging needs --by NAME and --reason TEXT (they are recorded)")
    store = open_store_for_cli(args)
    try:
        open_findings = unacknowledged(store)
        if not acking:
            if not open_findings:
                print("no unacknowledged journal findings")
            for f in open_findings:
                print(f"{f['id']}\t{f['found_at']:%Y-%m-%d %H:%M:%S}\t{f['kind']}\t{f['detail']}")
            return 0
        known = {f["id"] for f in open_findings}
        unknown = sorted(set(args.ids) - known)
        if unknown:
            raise CliError(f"no unacknowledged journal finding with id {', '.join(unknown)}")
        ids = sorted(known) if args.all else list(dict.fromkeys(args.ids))
        print(
            f"acknowledged {acknowledge(store, ids, args.by.strip(), args.reason.strip())} journal finding(s)"
        )
        return 0
    finally:
        store.close()
