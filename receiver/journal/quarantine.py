"""The quarantine: rows the store rejected for good, kept on disk instead of blocking the journal.

When the engine refuses a batch for a reason that retrying cannot fix (a value it cannot parse,
a schema mismatch from an older journal record: :func:`receiver.store.errors.is_rejection`),
the commit thread splits the batch (:func:`isolate`, a bisection) so every row the store takes
is stored, and only the rows that fail on their own come here. Nothing is lost: each batch's
rejected rows are one Arrow IPC **file** ``<journal dir>/quarantine/<UTC time>-<journal seq>.arrow``
— the validated rows exactly as the journal held them (before the hash chain), plus a column
``quarantine_error`` (the engine's error for that row) — written to a temporary name, fsync'd,
renamed and the directory fsync'd *before* the journal records are released. The file's schema
metadata says when and from which journal records. Read it with ``pyarrow.ipc.open_file``,
``clickhouse local`` (``file('…', Arrow)``) or ``otel-audit quarantine``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

ERROR_COLUMN = "quarantine_error"
SUFFIX = ".arrow"
#: failed inserts one batch may spend isolating its bad rows; past it, the pieces still failing
#: are quarantined whole (a batch whose every row fails, e.g. an old schema, costs ~this many
#: inserts instead of two per row)
MAX_FAILED_INSERTS = 48


@dataclass(frozen=True, slots=True)
class Rejected:
    """Rows the store refused, with its error."""

    table: pa.Table
    error: str


def isolate(
    table: pa.Table,
    error: BaseException,
    commit: Callable[[pa.Table], object],
    is_rejection: Callable[[BaseException], bool],
    max_failed: int = MAX_FAILED_INSERTS,
) -> list[Rejected]:
    """Commit what the store takes of ``table`` (which failed as a whole with ``error``) by
    bisection, in row order; returns the pieces that failed on their own (single rows, unless
    the budget of failed inserts ran out). A transient error on the way is raised: the caller
    retries the whole batch later (what was committed meanwhile is then dropped as duplicates).
    """
    rejected: list[Rejected] = []
    failed = 1

    def settle(piece: pa.Table, exc: BaseException) -> None:
        nonlocal failed
        if piece.num_rows <= 1 or failed >= max_failed:
            rejected.append(Rejected(piece, _text(exc)))
            return
        mid = piece.num_rows // 2
        for half in (piece.slice(0, mid), piece.slice(mid)):
            try:
                commit(half)
            except Exception as half_exc:  # noqa: BLE001 - classified below
                if not is_rejection(half_exc):
                    raise
                failed += 1
                settle(half, half_exc)

    settle(table, error)
    return rejected


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:4000]


class Quarantine:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def put(self, rejected: list[Rejected], journal_seqs: list[int]) -> Path:
        """Write one batch's rejected rows durably; returns the file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        parts = [
            r.table.append_column(ERROR_COLUMN, pa.array([r.error] * r.table.num_rows, pa.string()))
            for r in rejected
        ]
        table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        now = dt.datetime.now(dt.timezone.utc)
        first = min(journal_seqs) if journal_seqs else 0
        metadata = dict(table.schema.metadata or {})
        metadata.update(
            {
                b"otel_audit.quarantined_at": now.isoformat().encode(),
                b"otel_audit.journal_records": ",".join(map(str, journal_seqs)).encode(),
            }
        )
        table = table.replace_schema_metadata(metadata)
        name = f"{now:%Y%m%dT%H%M%S%f}Z-{first:012d}"
        path = self.directory / f"{name}{SUFFIX}"
        k = 1
        while path.exists():
            path = self.directory / f"{name}.{k}{SUFFIX}"
            k += 1
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            with pa.ipc.new_file(handle, table.schema) as writer:
                writer.write_table(table)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return path

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"*{SUFFIX}"))


def read(path: Path) -> pa.Table:
    """A quarantine file's rows, ``quarantine_error`` included."""
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def rows_to_replay(table: pa.Table) -> pa.Table:
    """The rows as the writer takes them again (without the error column and file metadata)."""
    if ERROR_COLUMN in table.column_names:
        table = table.drop_columns([ERROR_COLUMN])
    return table.replace_schema_metadata(None)
