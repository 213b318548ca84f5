"""How one journal record sits in a segment file, and how a segment is read back.

A record is a 24-byte header followed by its payload, an Arrow IPC stream (schema + batches) of
one request's validated, enriched table::

    magic "OAJ1" | payload length u32 | seq u64 | rows u32 | crc32 u32 | payload

The CRC covers the payload and then the length, seq and rows fields, so a record is accepted only
if every byte of it arrived. Records are appended and never rewritten: after a crash (kill -9,
power loss) the only damage is a torn tail — a partial header, a short payload or a CRC mismatch
at the end of the last segment. :func:`scan` stops at the first damaged record and reports where
the valid bytes end; the journal truncates the file there.
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
    #: where the valid records end; equal to the file size unless the tail is damaged
    valid_end: int
    file_size: int
    #: why the scan stopped early ("" when it read to the end)
    damage: str = ""


def scan(path: Path) -> Scan:
    """Every intact record of a segment, in order, up to the first damaged one."""
    data = path.read_bytes()
    buf = pa.py_buffer(data)
    size = len(data)
    records: list[Record] = []
    pos = 0
    damage = ""
    while pos < size:
        if size - pos < HEADER_SIZE:
            damage = f"partial header at byte {pos}"
            break
        magic, length, seq, rows, crc = _HEADER.unpack_from(data, pos)
        if magic != MAGIC or length > MAX_PAYLOAD:
            damage = f"no record header at byte {pos}"
            break
        start = pos + HEADER_SIZE
        if start + length > size:
            damage = f"record at byte {pos} is cut short ({size - start} of {length} payload bytes)"
            break
        payload = buf.slice(start, length)
        if zlib.crc32(_FIELDS.pack(length, seq, rows), zlib.crc32(memoryview(payload))) != crc:
            damage = f"record at byte {pos} fails its CRC"
            break
        try:
            table = pa.ipc.open_stream(payload).read_all()
        except (pa.ArrowInvalid, OSError) as exc:
            damage = f"record at byte {pos} is not an Arrow stream: {exc}"
            break
        if table.num_rows != rows:
            damage = f"record at byte {pos} holds {table.num_rows} rows, its header says {rows}"
            break
        records.append(Record(seq, rows, pos, HEADER_SIZE + length, table))
        pos = start + length
    return Scan(records, pos, size, damage)
