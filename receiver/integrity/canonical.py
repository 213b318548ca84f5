"""canonical(): the versioned byte encoding of one stored event, the data of its Merkle leaf.

Two implementations of the same bytes (docs/INTEGRITY.md describes them byte by byte):

- :func:`canonical` — the reference, one row at a time in plain Python; the definition.
- :func:`canonical_column` — the same bytes for a whole Arrow table, built column-wise by
  Arrow's C++ kernels (no Python per-row loop), used by the writer and by ``verify``.

Encoding v2: ``b"otel-audit/2\\n"`` followed by every field of :data:`FIELDS`, in that order,
each as a netstring-like ``<decimal byte length>:<bytes>``. Strings are UTF-8; timestamps are
integer microseconds since the Unix epoch (UTC); ``retain_until`` is ``YYYY-MM-DD``; numbers
are decimal; ``attributes`` is itself the concatenation of ``len:key len:value`` for every entry
in the order the store keeps them (a ClickHouse ``Map`` keeps insertion order), wrapped as one
field. ``chain_id`` holds the event's log origin (``otel-audit/<tenant>/<instance>``) and ``seq``
its 0-based leaf index, so the bytes name the event's place in its log.

The leaf hash is SHA-256(0x00 ‖ canonical(row)) (RFC 9162 section 2.1.1).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

VERSION = 2
PREFIX = b"otel-audit/2\n"

#: The fields canonical() covers, in order. Every stored column is here: an edit of any of
#: them, including retain_until (an early expiry) and the chain position, breaks the hash.
FIELDS: tuple[str, ...] = (
    "chain_id",
    "seq",
    "id",
    "tenant_id",
    "user_id",
    "actor_type",
    "action",
    "outcome",
    "resource_type",
    "resource_id",
    "event_name",
    "changes",
    "ip_address",
    "user_agent",
    "created_at",
    "received_at",
    "service_name",
    "trace_id",
    "span_id",
    "session_id",
    "http_method",
    "http_route",
    "http_status",
    "reason",
    "attributes",
    "retain_until",
)
_TIMESTAMPS = ("created_at", "received_at")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MICRO = dt.timedelta(microseconds=1)


def _field(data: bytes) -> bytes:
    return str(len(data)).encode("ascii") + b":" + data


def _text(name: str, value: Any) -> bytes:
    if name in _TIMESTAMPS:
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return str((value - _EPOCH) // _MICRO).encode("ascii")
    if name == "retain_until":
        return value.isoformat().encode("ascii")
    if name == "attributes":
        items = value.items() if isinstance(value, Mapping) else (value or [])
        return b"".join(_field(k.encode("utf-8")) + _field(v.encode("utf-8")) for k, v in items)
    if isinstance(value, int):
        return str(value).encode("ascii")
    return str(value).encode("utf-8")


def canonical(row: Mapping[str, Any]) -> bytes:
    """The reference encoding of one row (a mapping of column name → value as Arrow's
    ``to_pylist`` gives it: str, int, tz-aware datetime, date, dict or list of pairs)."""
    return PREFIX + b"".join(_field(_text(name, row[name])) for name in FIELDS)


# -- the column-wise twin ---------------------------------------------------------------------

#: ``"<n>:"`` for every length below this, looked up instead of formatted (a field is nearly
#: always shorter; a batch with a longer one formats that field's headers with a cast)
_HEADER_LOOKUP_SIZE = 1 << 16
_HEADERS = pa.array([f"{n}:" for n in range(_HEADER_LOOKUP_SIZE)], pa.string())


def _headers(values: pa.Array) -> pa.Array:
    """``<len>:`` for each element of a string array (lengths count UTF-8 bytes)."""
    lengths = pc.binary_length(values)
    longest = pc.max(lengths).as_py()
    if longest is not None and longest < _HEADER_LOOKUP_SIZE:
        return _HEADERS.take(lengths)
    return pc.binary_join_element_wise(pc.cast(lengths, pa.string()), ":", "")


def _offsets(array: pa.Array) -> np.ndarray:
    """The value offsets of a string, binary or list-like array, as numpy (zero-copy)."""
    wide = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    dtype = np.int64 if wide else np.int32
    return np.frombuffer(array.buffers()[1], dtype=dtype)[array.offset : array.offset + len(array) + 1]


def _attributes_text(column: pa.Array) -> pa.Array:
    """Per row: ``len:key len:value`` for each entry in stored order, concatenated.

    The entries of all rows are encoded in one pass; since a row's entries are consecutive,
    its text is then one byte range of that buffer, so the rows are cut out by offsets alone."""
    maps = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    map_offsets = _offsets(maps)  # a null map has an empty range, so it encodes like {}
    start = int(map_offsets[0])
    count = int(map_offsets[-1]) - start
    if count == 0:
        return pa.array([""] * len(maps), pa.string())
    # .keys/.items ignore a slice's offset: cut the entries of this slice out by hand
    keys = maps.keys.slice(start, count)
    items = maps.items.slice(start, count)
    entries = pc.binary_join_element_wise(_headers(keys), keys, _headers(items), items, "")
    row_offsets = _offsets(entries)[map_offsets - start]
    text_type = pa.large_string() if row_offsets.dtype == np.int64 else pa.string()
    data = entries.buffers()[2]
    return pa.Array.from_buffers(text_type, len(maps), [None, pa.py_buffer(row_offsets.tobytes()), data])


def _column_text(name: str, column: pa.ChunkedArray | pa.Array) -> pa.Array:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if name == "attributes":
        return _attributes_text(array)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if name in _TIMESTAMPS:
        array = pc.cast(array.cast(pa.timestamp("us", tz="UTC")), pa.int64())
    elif name == "id" and pa.types.is_fixed_size_binary(array.type):
        raise TypeError("canonical_column needs id as text (SELECT toString(id))")
    return array if pa.types.is_string(array.type) else pc.cast(array, pa.string())


def canonical_column(table: pa.Table, *, leaf_prefix: bool = False) -> pa.Array:
    """canonical() of every row of ``table``, as one binary array, without a Python loop;
    with ``leaf_prefix``, each preceded by RFC 9162's 0x00 (the bytes a leaf hash covers)."""
    head = ("\x00" if leaf_prefix else "") + PREFIX.decode("ascii")
    parts: list[pa.Array | pa.Scalar] = [pa.scalar(head)]
    for name in FIELDS:
        text = _column_text(name, table.column(name))
        parts += (_headers(text), text)
    # one join of every header and value: a row's fields are written once, in place
    return pc.binary_join_element_wise(*parts, "").cast(pa.binary())


def event_digest(row: Mapping[str, Any]) -> bytes:
    """The leaf hash of one row, SHA-256(0x00 ‖ canonical(row)) (reference)."""
    return hashlib.sha256(b"\x00" + canonical(row)).digest()


#: rows encoded at a time by :func:`event_digests`: the encoding (~440 bytes a row) and the
#: column copies exist for one slice at a time, not for a whole group commit (a 100 k-row
#: batch held ~45 MB of encoding at once), at the same CPU per row
DIGEST_SLICE_ROWS = 16384


def event_digests(table: pa.Table, slice_rows: int = DIGEST_SLICE_ROWS) -> list[bytes]:
    """The leaf hash of every row of ``table`` (column-wise encoding, then hashlib over slices
    of the one buffer, with no Python bytes object per row), ``slice_rows`` rows at a time."""
    out: list[bytes] = []
    sha256 = hashlib.sha256
    for start in range(0, table.num_rows, slice_rows):
        encoded = canonical_column(table.slice(start, slice_rows), leaf_prefix=True)
        bounds = _offsets(encoded).tolist()
        data = memoryview(encoded.buffers()[2])
        out += [sha256(data[bounds[i] : bounds[i + 1]]).digest() for i in range(len(encoded))]
    return out
