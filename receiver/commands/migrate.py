"""``otel-audit migrate``: apply the schema versions a store lacks (versioned, idempotent)."""

from __future__ import annotations

import argparse

from receiver.commands.common import CliError, store_url


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="apply missing schema versions (receiver/store/schema/NNN_*.sql)")
    p.add_argument("--config", help="YAML config (its store: is used when --store is not given)")
    p.add_argument("--store", help="chdb:///path or clickhouse[s]://user:pass@host:port/db[?cluster=NAME]")
    p.add_argument("--status", action="store_true", help="list the versions and when each was applied")
    p.add_argument(
        "--print-sql",
        action="store_true",
        help="print the DDL instead of running it (for review or clickhouse-client --multiquery)",
    )
    p.add_argument("--cluster", help="with --print-sql: the ON CLUSTER / Replicated / Distributed variant")
    p.add_argument("--database", default="audit", help="with --print-sql: the database name (default audit)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from receiver.store import migrations
    from receiver.store.base import StoreUnavailable
    from receiver.store.sql import check_identifier

    if args.print_sql:
        try:
            db = check_identifier(args.database)
            cluster = check_identifier(args.cluster) if args.cluster else None
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        print(migrations.full_script(db, cluster), end="")
        return 0
    from receiver.commands.common import open_store_for_cli

    store = open_store_for_cli(argparse.Namespace(store=store_url(args), config=None))
    try:
        # opening a store applies what is missing; a second run finds nothing left to do
        applied = list(getattr(store, "applied_on_open", [])) + store.migrate()
        if args.status:
            for row in store.schema_status():
                when = row["applied_at"].isoformat() if row["applied_at"] else "not applied"
                print(f"{row['version']:03d}_{row['name']}\t{when}")
        elif applied:
            print("applied: " + ", ".join(applied))
        else:
            last = max(m.version for m in migrations.load_migrations())
            print(f"schema up to date (version {last:03d})")
    except StoreUnavailable as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    return 0
