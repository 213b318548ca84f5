"""How one journal record sits in a segment file, and how a segment is read back.

A record is a 24-byte header followed by its payload, an Arrow IPC stream (schema + batches) of
one request's validated, enriched table::

    magic "OAJ1" | payload length u32 | seq u64 | rows u32 | crc32 u32 | payload

The CRC covers the payload and then the length, seq and rows fields, so a record is accepted only
if every byte of it arrived. Records are appended and never rewritten: after a crash (kill -9,
power loss) the only damage is a torn tail — a partial header, a short payload or a CRC mismatch
at the end of the last segment. :func:`scan` skips a damaged record (resuming at the next record
header, so damage inside a file loses only that record) and reports where the last intact record
ends; the journal truncates the file there.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

MAGIC = b"OAJ1"
_HEADER = struct.Struct("<4sIQII")
_FIELDS = struct.Struct("<IQI")
HEADER_SIZE = _HEADER.size
#: a payload larger than this is damage, not a record (OTLP/HTTP bodies are far smaller)
MAX_PAYLOAD = 1 << 30


def serialize(table: pa.Table) -> pa.Buffer:
    """``table`` as one Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def payload_crc(payload: pa.Buffer | bytes) -> int:
    """The part of the CRC computed outside the journal's lock (the expensive part)."""
    return zlib.crc32(memoryview(payload))


def header(seq: int, rows: int, payload: pa.Buffer | bytes, crc_of_payload: int) -> bytes:
    """The header that goes in front of ``payload``, finishing its CRC with the fields."""
    length = len(memoryview(payload))
    crc = zlib.crc32(_FIELDS.pack(length, seq, rows), crc_of_payload)
    return _HEADER.pack(MAGIC, length, seq, rows, crc)


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    rows: int
    offset: int
    size: int  # header + payload
    table: pa.Table


@dataclass(frozen=True, slots=True)
class Scan:
    records: list[Record]
    #: where the last intact record ends; equal to the file size unless something is damaged
    valid_end: int
    file_size: int
    #: what was skipped ("" when every byte belonged to an intact record)
    damage: str = ""


def scan(path: Path) -> Scan:
    """Every intact record of a segment, in order. A damaged record is skipped by searching for
    the next record header after it (a torn tail has none: the scan ends there)."""
    data = path.read_bytes()
    buf = pa.py_buffer(data)
    size = len(data)
    records: list[Record] = []
    pos = 0
    valid_end = 0
    damage: list[str] = []
    while pos < size:
        problem, record = _read_record(data, buf, pos)
        if record is not None:
            records.append(record)
            pos = valid_end = record.offset + record.size
            continue
        damage.append(problem)
        pos = data.find(MAGIC, pos + 1)
        if pos < 0:
            break
    return Scan(records, valid_end, size, "; ".join(damage))


def _read_record(data: bytes, buf: pa.Buffer, pos: int) -> tuple[str, Record | None]:
    size = len(data)
    if size - pos < HEADER_SIZE:
        return f"partial header at byte {pos}", None
    magic, length, seq, rows, crc = _HEADER.unpack_from(data, pos)
    if magic != MAGIC or length > MAX_PAYLOAD:
        return f"no record header at byte {pos}", None
    start = pos + HEADER_SIZE
    if start + length > size:
        return f"record at byte {pos} is cut short ({size - start} of {length} payload bytes)", None
    payload = buf.slice(start, length)
    if zlib.crc32(_FIELDS.pack(length, seq, rows), zlib.crc32(memoryview(payload))) != crc:
        return f"record at byte {pos} fails its CRC", None
    try:
        table = pa.ipc.open_stream(payload).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        return f"record at byte {pos} is not an Arrow stream: {exc}", None
    if table.num_rows != rows:
        return f"record at byte {pos} holds {table.num_rows} rows, its header says {rows}", None
    return "", Record(seq, rows, pos, HEADER_SIZE + length, table)
