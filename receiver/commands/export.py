"""``otel-audit export --format csv|jsonl|parquet --out FILE [filters]``: every matching event,
streamed to a file, from the store (``--store``/``--config``) or a running server (``--server``,
through its export routes), with a progress bar on a terminal.

The file appears only when the export is complete (written as ``FILE.partial``, then renamed),
so a failed or interrupted export never leaves a truncated file that looks whole. An export
straight from the store is recorded in the audit log like one through the API
(``audit.audit_log.export``, actor = the operating-system user).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from receiver.commands.common import (
    CliError,
    add_filter_flags,
    add_source_flags,
    filters_from_args,
    open_store_for_cli,
)
from receiver.filters import EventFilter, filter_to_params

FORMATS = ("csv", "jsonl", "parquet")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export events to a CSV, JSON lines or Parquet file")
    add_source_flags(p)
    add_filter_flags(p)
    p.add_argument("--format", choices=FORMATS, required=True, help="file format of the export")
    p.add_argument("--out", required=True, help="file to write ('-' for standard output)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    flt = filters_from_args(args)
    with _Progress(enabled=not args.no_progress and args.out != "-") as progress:
        if args.server:
            chunks = _from_server(args, flt, progress)
        else:
            chunks = _from_store(args, flt, progress)
        written = _write(args.out, chunks)
    if args.out != "-":
        print(f"exported {progress.rows:,} event(s) to {args.out} ({written:,} bytes)", file=sys.stderr)
    return 0


def _write(out: str, chunks: Iterator[bytes]) -> int:
    if out == "-":
        total = 0
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
            total += len(chunk)
        sys.stdout.buffer.flush()
        return total
    target = Path(out)
    partial = target.with_name(target.name + ".partial")
    total = 0
    try:
        with open(partial, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                total += len(chunk)
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return total


def _from_store(args: argparse.Namespace, flt: EventFilter, progress: _Progress) -> Iterator[bytes]:
    from receiver.formats import csv_document, parquet_chunks
    from receiver.store.base import StoreUnavailable

    store = open_store_for_cli(args)
    try:
        _record_local_export(args, store, flt, store.count(flt))
        # the export's own audit event may match its filters: count after recording it
        progress.start(store.count(flt))
        if args.format == "csv":
            yield from progress.count_lines(csv_document(store.iter_csv(flt)), header=True)
        elif args.format == "jsonl":
            yield from progress.count_lines(store.iter_jsonl(flt))
        else:
            yield from parquet_chunks(progress.count_batches(store.iter_batches(flt)))
    except StoreUnavailable as exc:
        raise CliError(f"store unavailable: {exc}") from exc
    finally:
        store.close()


def _from_server(args: argparse.Namespace, flt: EventFilter, progress: _Progress) -> Iterator[bytes]:
    import httpx

    headers = {"authorization": f"Bearer {args.token}"} if args.token else {}
    url = args.server.rstrip("/") + f"/api/export.{args.format}"
    try:
        with httpx.stream(
            "GET", url, params=filter_to_params(flt), headers=headers, timeout=httpx.Timeout(60.0)
        ) as response:
            if response.status_code != 200:
                response.read()
                raise CliError(f"server answered {response.status_code}: {_reason(response)}")
            total = int(response.headers.get("x-total-count") or 0)
            progress.start(total)
            body = response.iter_bytes(1 << 20)
            if args.format == "parquet":
                yield from progress.count_bytes(body, total)
            else:
                yield from progress.count_lines(body, header=args.format == "csv")
    except httpx.HTTPError as exc:
        raise CliError(f"export from {args.server} failed: {exc}") from exc


def _reason(response: Any) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text[:200]


def _record_local_export(args: argparse.Namespace, store: Any, flt: EventFilter, total: int) -> None:
    """The audit event of an export run straight on the store, through the ingest pipeline."""
    from receiver.admin.access import Access
    from receiver.admin.trail import AccessEvent, AccessTrail, query_attributes, tenants_read
    from receiver.config import ConfigError, load_config
    from receiver.ingest import IngestConsumer
    from receiver.telemetry import ReceiverMetrics
    from receiver.writer import GroupCommitWriter

    try:
        config = load_config(getattr(args, "config", None))
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    metrics = ReceiverMetrics()
    writer = GroupCommitWriter(store, metrics)
    try:
        consumer = IngestConsumer(config, writer, metrics)
        trail = AccessTrail(lambda request, identity: consumer.ingest(request, identity, "internal"))
        access = Access(name=f"{getpass.getuser()}@{socket.gethostname()}", role="admin", tenants=None)
        seen = store.tenants(flt) if flt.single_tenant is None else []
        trail.record(
            AccessEvent(
                access=access,
                action="export",
                tenants=tenants_read(access, flt.single_tenant, seen),
                resource_id="audit_events",
                reason=f"exported audit events as {args.format} with otel-audit export: {total} matching",
                user_agent="otel-audit export",
                http_method="",
                http_status=0,
                attributes={
                    **query_attributes(filter_to_params(flt)),
                    "audit.export.format": args.format,
                    "audit.result.count": str(total),
                },
            )
        )
    finally:
        writer.close()


class _Progress:
    """A rich progress bar on a terminal (rows when known, else bytes); silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.rows = 0
        self._bar: Any = None
        self._task: Any = None
        self._enabled = enabled and sys.stderr.isatty()
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def start(self, total: int) -> None:
        self.total = total
        if not self._enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._bar = self._stack.enter_context(
            Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
        )
        self._task = self._bar.add_task("exporting events", total=total or None)

    def _advance(self, rows: int) -> None:
        self.rows += rows
        if self._bar is not None:
            self._bar.update(self._task, completed=min(self.rows, self.total or self.rows))

    def count_lines(self, chunks: Iterator[bytes], header: bool = False) -> Iterator[bytes]:
        # a quoted CSV field may hold a newline: the line count is exact for JSON lines and
        # close for CSV; the final figure is capped at the matching count
        first = header
        for chunk in chunks:
            lines = chunk.count(b"\n")
            if first and lines:
                lines -= 1
                first = False
            self._advance(lines)
            yield chunk
        if self.total:
            self.rows = min(self.rows, self.total)

    def count_batches(self, batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            self._advance(batch.num_rows)
            yield batch

    def count_bytes(self, chunks: Iterator[bytes], total_rows: int) -> Iterator[bytes]:
        yield from chunks
        self._advance(total_rows)
