"""``otel-audit verify``: recompute every log's leaves and tree, check every signed checkpoint.

Prints one line per tenant ("acme: 1,204,332 events in 1 log, 14 checkpoints, intact") and
exits 0 only when everything is intact; 1 names the damage, its tenant, origin and leaf. Then one
line per finding beside the log (``receiver.integrity.findings``: journal tampering not yet
acknowledged, events a source sent that never arrived); any finding also exits 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from receiver.commands.common import CliError, add_source_flags

EXIT_DAMAGED = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check the tamper-evidence chain; exit 0 only if intact")
    add_source_flags(p)
    p.add_argument("--tenant", action="append", help="only this tenant (repeatable; default all)")
    p.add_argument("--since", help="accepted for compatibility; logs are always verified whole")
    p.add_argument("--until", help="accepted for compatibility; logs are always verified whole")
    p.add_argument(
        "--checkpoints",
        action="append",
        help="directory of published checkpoint notes to compare against (repeatable; default: the configured publish dirs)",
    )
    p.add_argument(
        "--public-key",
        action="append",
        help="verifier key (name+id+key, or a .pub/PEM file); repeatable to accept old keys after rotation",
    )
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(run=run)


def _range(args: argparse.Namespace) -> dict[str, str]:
    return {k: v for k, v in (("since", args.since), ("until", args.until)) if v}


def run(args: argparse.Namespace) -> int:
    findings: list[dict[str, Any]] = []
    results = _via_server(args, findings) if args.server else _direct(args, findings)
    if args.json:
        import json

        print(json.dumps({"tenants": results, "findings": findings}, indent=2))
    else:
        if not results:
            print("no events to verify")
        for result in results:
            print(result["summary"])
        for finding in findings:
            print(f"{finding['tenant']}: {finding['kind']}: {finding['detail']}")
    return EXIT_DAMAGED if findings or any(r["status"] != "intact" for r in results) else 0


def _via_server(args: argparse.Namespace, findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from receiver.client import AdminClient, AdminClientError

    if args.checkpoints or args.public_key:
        raise CliError(
            "--checkpoints and --public-key apply to a store read directly; the server uses its own"
        )
    client = AdminClient(args.server, args.token, timeout=3600)
    results: list[dict[str, Any]] = []
    try:
        for tenant in args.tenant or [None]:
            params = dict(_range(args), **({"tenant": tenant} if tenant else {}))
            report = client.verify_report(params)
            results.extend(report["tenants"])
            findings.extend(f for f in report.get("findings", []) if f not in findings)
    except AdminClientError as exc:
        raise CliError(str(exc)) from exc
    finally:
        client.close()
    return results


def _direct(args: argparse.Namespace, findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from receiver.commands.common import open_store_for_cli
    from receiver.config import ConfigError, load_config
    from receiver.filters import FilterError, parse_filters
    from receiver.integrity.checkpoints import load_verifiers
    from receiver.integrity.note import NoteError
    from receiver.integrity.setup import default_published_dirs, default_verifiers
    from receiver.integrity.verify import verify_store

    try:
        when = parse_filters(_range(args))
        config = load_config(args.config)
        integrity = config.integrity
    except (FilterError, ConfigError) as exc:
        raise CliError(str(exc)) from exc
    store = open_store_for_cli(args)
    try:
        try:
            verifiers = (
                [v for spec in args.public_key for v in load_verifiers(spec)]
                if args.public_key
                else default_verifiers(integrity, store)
            )
        except (OSError, ValueError, NoteError) as exc:
            raise CliError(f"cannot read the public key: {exc}") from exc
        dirs = args.checkpoints or default_published_dirs(integrity, store)
        with _Progress() as progress:
            reports = verify_store(
                store,
                tenants=tuple(args.tenant) if args.tenant else None,
                since=when.since,
                until=when.until,
                checkpoint_dirs=dirs,
                verifiers=verifiers,
                progress=progress.advance,
            )
        if args.tenant:
            found = {r.tenant for r in reports}
            from receiver.integrity.verify import TenantReport

            reports += [
                TenantReport(t, signatures_checked=bool(verifiers)) for t in args.tenant if t not in found
            ]
        findings.extend(_findings(store, args.tenant, config.sources.gap_grace_seconds))
        return [r.to_json() for r in reports]
    finally:
        store.close()


def _findings(store: Any, tenants: list[str] | None, grace_seconds: float) -> list[dict[str, Any]]:
    import datetime as dt

    from receiver.integrity.findings import collect

    now, grace = dt.datetime.now(dt.UTC), dt.timedelta(seconds=grace_seconds)
    return [f.to_json() for f in collect(store, tuple(tenants) if tenants else None, now, grace)]


class _Progress:
    """Rows verified so far, on a terminal only (stderr)."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("verifying: {task.completed:,} events"),
                console=Console(stderr=True),
            )
            self._progress.start()
            self._task = self._progress.add_task("verify", total=None)
        return self

    def advance(self, rows: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, rows)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
