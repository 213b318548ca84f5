"""``otel-audit proof ID``: print the inclusion proof JSON of one event (SPEC section 7)."""

from __future__ import annotations

import argparse
import json
import uuid

from receiver.commands.common import CliError, add_source_flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("proof", help="print an event's inclusion proof and signed checkpoint (JSON)")
    p.add_argument("event_id", help="the event's id (audit.event.id, a UUID)")
    add_source_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        event_id = str(uuid.UUID(args.event_id))
    except ValueError as exc:
        raise CliError("event id is not a UUID") from exc
    if args.server:
        from receiver.client import AdminClient, AdminClientError

        client = AdminClient(args.server, args.token)
        try:
            doc = client.call("GET", f"/api/events/{event_id}/proof")
        except AdminClientError as exc:
            raise CliError(str(exc)) from exc
        finally:
            client.close()
    else:
        from receiver.commands.common import open_store_for_cli
        from receiver.integrity.proofs import ProofError, event_proof

        store = open_store_for_cli(args)
        try:
            doc = event_proof(store, event_id, None)
        except ProofError as exc:
            raise CliError(str(exc)) from exc
        finally:
            store.close()
    print(json.dumps(doc, indent=2))
    return 0
