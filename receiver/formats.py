"""Event rows → CSV, JSON lines and Parquet, shared by the CLI and the admin API's exports.

CSV follows SPEC section 5: fixed columns, ISO 8601 UTC timestamps, every field quoted, and any
cell that a spreadsheet would run as a formula (=, +, -, @, tab, CR first, also after leading
whitespace or invisible characters, and the full-width ＝＋－＠) prefixed with ``'`` (OWASP).
Exports take CSV and JSON lines from the store, which has the engine format them
(``sql.export_csv``, ``sql.export_jsonl``): no Python object per row. :func:`csv_lines` and
:func:`jsonl_lines` write the very same bytes from API rows (``query``, tests). Parquet is
written from Arrow record batches, one row group per batch.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pyarrow as pa

from receiver.model import API_COLUMNS, ARROW_SCHEMA, CSV_COLUMNS

#: OWASP's CSV-injection rule: a cell starting with one of these is run as a formula (the
#: full-width forms too: spreadsheets fold them to ASCII) ...
FORMULA_STARTS = (
    (0x3D, 0x3D),
    (0x2B, 0x2B),
    (0x2D, 0x2D),
    (0x40, 0x40),
    (0x09, 0x09),
    (0x0D, 0x0D),
    (0xFF1D, 0xFF1D),
    (0xFF0B, 0xFF0B),
    (0xFF0D, 0xFF0D),
    (0xFF20, 0xFF20),
)
#: ... also after leading whitespace or invisible characters (line breaks, no-break and
#: ideographic spaces, zero-width and bidirectional controls), which spreadsheets skip or a
#: reader does not see. Tab and CR are left out here (they are starts already) so that no byte
#: could begin both classes: RE2 then matches in one pass (5x faster in the engine).
FORMULA_LEAD = (
    (0x0A, 0x0C),
    (0x20, 0x20),
    (0xA0, 0xA0),
    (0x061C, 0x061C),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2069),
    (0x3000, 0x3000),
)


def formula_pattern(escape: Callable[[int], str]) -> str:
    """The guard as a regular expression (no anchor, no group) in Python's or RE2's escapes."""

    def klass(ranges: tuple[tuple[int, int], ...]) -> str:
        return "[" + "".join(escape(lo) + (f"-{escape(hi)}" if hi != lo else "") for lo, hi in ranges) + "]"

    return klass(FORMULA_LEAD) + "*" + klass(FORMULA_STARTS)


_FORMULA = re.compile("^" + formula_pattern(lambda c: f"\\u{c:04x}"))
#: The CSV header line, in the quoting the engine uses for the rows.
CSV_HEADER = (",".join(f'"{name}"' for name in CSV_COLUMNS) + "\n").encode()


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    else:
        text = str(value)
    if _FORMULA.match(text):
        return "'" + text
    return text


def csv_lines(rows: Iterable[Mapping[str, Any]], header: bool = True) -> Iterator[str]:
    """CSV text, one chunk per row: every field quoted, ``"`` doubled, LF line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    if header:
        yield CSV_HEADER.decode()
    for row in rows:
        writer.writerow([csv_cell(row.get(name)) for name in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def csv_document(body: Iterable[bytes]) -> Iterator[bytes]:
    """The header, then the engine-made CSV body chunks as they come."""
    yield CSV_HEADER
    yield from body


def jsonl_lines(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"


def _portable(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Dictionary-encoded columns (the engine's LowCardinality) as plain strings, so that every
    batch of one file has the same schema whatever the engine chose per block."""
    columns, fields = [], []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        if pa.types.is_dictionary(field.type):
            column = column.cast(field.type.value_type)
        elif pa.types.is_map(field.type) and pa.types.is_dictionary(field.type.key_type):
            column = column.cast(pa.map_(field.type.key_type.value_type, field.type.item_type))
        columns.append(column)
        fields.append(pa.field(field.name, column.type))
    return pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields))


class _ChunkSink(io.RawIOBase):
    """A write-only file that hands what was written so far to the caller (no seeking)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def parquet_chunks(batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    """A Parquet file, written as it goes: one row group per batch, the footer last."""
    import pyarrow.parquet as pq

    sink = _ChunkSink()
    writer: pq.ParquetWriter | None = None
    try:
        for raw in batches:
            batch = _portable(raw)
            if writer is None:
                writer = pq.ParquetWriter(sink, batch.schema, compression="zstd")
            elif batch.schema != writer.schema:
                batch = batch.cast(writer.schema)
            writer.write_batch(batch)
            if chunk := sink.take():
                yield chunk
        if writer is None:
            schema = pa.schema([ARROW_SCHEMA.field(name) for name in API_COLUMNS])
            writer = pq.ParquetWriter(sink, schema, compression="zstd")
        writer.close()
        yield sink.take()
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()
