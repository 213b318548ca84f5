"""``otel-audit quarantine``: list, show and replay the events the store rejected for good.

The journal's commit thread moves rows the store refuses on their own (a value the engine
cannot take, an old schema) to ``<journal dir>/quarantine/*.arrow`` instead of retrying them
forever (:mod:`receiver.journal.quarantine`). ``list`` and ``show`` read those files. ``replay``
appends a file's rows back to the journal (so the receiver must be stopped: one process owns a
journal) and moves the file to ``quarantine/replayed/``; the next ``serve`` start commits them
like any journal record — dedupe, hash chain, insert — and quarantines again what the store
still refuses.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from receiver.commands.common import CliError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quarantine", help="list, show or replay events the store rejected (journal mode)")
    p.add_argument(
        "action",
        choices=("list", "show", "replay"),
        help="list the quarantine files, show one's rows, or replay one into the journal",
    )
    p.add_argument("files", nargs="*", help="quarantine files (show, replay; default for replay: all)")
    p.add_argument("--journal", help="journal directory (default: from --config / --store, as serve does)")
    p.add_argument("--config", help="YAML config (its ingest.journal_dir and store:)")
    p.add_argument("--store", help="chdb:///path: the journal is <path>/journal")
    p.set_defaults(run=run)


def journal_directory(args: argparse.Namespace) -> Path:
    from receiver.config import ConfigError, load_config
    from receiver.store import chdb_path
    from receiver.store.sql import DEFAULT_DATABASE

    if args.journal:
        return Path(args.journal)
    try:
        config = load_config(args.config, store=args.store)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    if config.ingest.journal_dir:
        return Path(config.ingest.journal_dir)
    if config.store.startswith("chdb://"):
        database = parse_qs(urlparse(config.store).query).get("database", [DEFAULT_DATABASE])[0]
        base = chdb_path(config.store) / "journal"
        return base if database == DEFAULT_DATABASE else base / database
    return Path.cwd() / "otel-audit-journal"


def run(args: argparse.Namespace) -> int:
    from receiver.journal import quarantine

    directory = journal_directory(args) / "quarantine"
    files = [Path(f) for f in args.files] or quarantine.Quarantine(directory).files()
    if args.action == "list":
        if not files:
            print(f"no quarantined events in {directory}")
        for path in files:
            table = _read(path)
            meta = table.schema.metadata or {}
            when = meta.get(b"otel_audit.quarantined_at", b"?").decode()
            errors = set(table.column(quarantine.ERROR_COLUMN).to_pylist())
            first = min(errors, key=len) if errors else ""
            print(f"{path.name}: {table.num_rows} events, quarantined {when}: {first[:200]}")
        return 0
    if not args.files and args.action == "show":
        raise CliError("show: name a quarantine file")
    if args.action == "show":
        for path in files:
            for row in _read(path).to_pylist():
                print(
                    f"{row.get('id')} tenant={row.get('tenant_id')} user={row.get('user_id')} "
                    f"{row.get('event_name')}: {row[quarantine.ERROR_COLUMN][:300]}"
                )
        return 0
    return _replay(journal_directory(args), files)


def _read(path: Path):  # noqa: ANN202 - a pyarrow Table (imported lazily)
    from receiver.journal import quarantine

    try:
        return quarantine.read(path)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read quarantine file {path}: {exc}") from exc


def _replay(journal_dir: Path, files: list[Path]) -> int:
    from receiver.journal import Journal, JournalError, quarantine

    if not files:
        print("nothing to replay")
        return 0
    tables = [(path, quarantine.rows_to_replay(_read(path))) for path in files]
    journal = Journal(journal_dir, max_bytes=1 << 40)
    try:
        journal.open()
    except JournalError as exc:
        raise CliError(f"{exc}: stop `otel-audit serve`, replay, then start it again") from exc
    done = journal_dir / "quarantine" / "replayed"
    done.mkdir(parents=True, exist_ok=True)
    try:
        for path, table in tables:
            journal.append(table)  # fsync'd before the file is moved aside
            os.replace(path, done / path.name)
            print(f"{path.name}: {table.num_rows} events back in the journal")
    finally:
        journal.close()
    print(
        "they are committed at the next `otel-audit serve` start (what the store still refuses is quarantined again)"
    )
    return 0
