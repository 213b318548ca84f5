"""``otel-audit viewer-token --tenant T [--actor U] [--ttl 15m] [--export]``: mint a tenant-facing
viewer token (SPEC section 9). With ``--server`` it asks the running receiver
(``POST /api/viewer-tokens``, an admin token); without, it signs with the config's
``viewer.secrets`` and records the mint in the store itself (``serve`` must not hold it)."""

from __future__ import annotations

import argparse
import getpass
import json
import socket
from typing import Any

from receiver.commands.common import CliError, add_source_flags
from receiver.filters import FilterError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "viewer-token", help="mint a short-lived token for a tenant's embeddable audit-log viewer"
    )
    p.add_argument("--tenant", required=True, help="the tenant whose events the token shows")
    p.add_argument("--actor", help="only this user's events (a customer's 'my activity')")
    p.add_argument("--ttl", default=None, help="lifetime: 900, 90s, 15m, 2h, 1d (at most 1d; default 15m)")
    p.add_argument("--export", action="store_true", help="allow the viewer to export (CSV, JSON lines)")
    add_source_flags(p)
    p.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from receiver.viewer.mint import parse_request, parse_ttl

    try:
        body: dict[str, Any] = {"tenant": args.tenant, "can_export": bool(args.export)}
        if args.ttl is not None:
            body["ttl_seconds"] = parse_ttl(args.ttl)
        if args.actor:
            body["actor"] = args.actor
        req = parse_request(body)
    except FilterError as exc:
        raise CliError(str(exc)) from exc
    answer = _server(args, body) if args.server else _local(args, req)
    print(json.dumps(answer, indent=2) if args.json else answer["url"])
    return 0


def _server(args: argparse.Namespace, body: dict[str, Any]) -> dict[str, Any]:
    from receiver.commands.retention_common import server_call

    return dict(server_call(args, "POST", "/api/viewer-tokens", body=body))


def _local(args: argparse.Namespace, req: Any) -> dict[str, Any]:
    from receiver.admin.access import Access
    from receiver.admin.trail import AccessEvent, AccessTrail
    from receiver.commands.common import open_store_for_cli
    from receiver.commands.retention_common import load_cli_config
    from receiver.ingest import IngestConsumer
    from receiver.telemetry import ReceiverMetrics
    from receiver.viewer.mint import describe, mint
    from receiver.viewer.tokens import TokenError
    from receiver.writer import GroupCommitWriter

    config = load_cli_config(args)
    base = config.viewer.base_url or f"http://{config.listen.admin}"
    try:
        answer, claims = mint(config.viewer, req, base)
    except TokenError as exc:
        raise CliError(str(exc)) from exc
    # the mint is an access grant: recorded in the store like serve records it
    store = open_store_for_cli(args)
    metrics = ReceiverMetrics()
    writer = GroupCommitWriter(store, metrics)
    try:
        consumer = IngestConsumer(config, writer, metrics)
        trail = AccessTrail(lambda request, identity: consumer.ingest(request, identity, "internal"))
        who = Access(name=f"{getpass.getuser()}@{socket.gethostname()}", role="admin", tenants=None)
        trail.record(
            AccessEvent(
                access=who,
                action="grant",
                tenants=(claims.tenant,),
                resource_id=f"viewer-token:{claims.token_id}",
                reason=describe(claims) + " with otel-audit viewer-token",
                user_agent="otel-audit viewer-token",
                http_method="",
                http_status=0,
                attributes={
                    "audit.viewer.token_id": claims.token_id,
                    "audit.viewer.actor": claims.actor or "",
                    "audit.viewer.can_export": str(claims.can_export).lower(),
                    "audit.viewer.expires_at": answer["expires_at"],
                },
            )
        )
    finally:
        writer.close()
        store.close()
    return answer
