"""Column kernels of the batching fast path (receiver/batching/columnar.py): AnyValue kinds,
id hex, retention policies, the NUL/bidi pre-scan, ``audit.changes`` canonicalisation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from otel_audit import attributes as A
from receiver.pipeline.changes import MAX_CHANGES_CHARS, InvalidChanges, canonical_changes
from receiver.pipeline.enrich import RetainDays

_KNOWN_VERBS = pa.array(sorted(set(A.ACTIONS + A.ACTOR_TYPES)))
_VERB = r"^[a-z][a-z_]{0,63}$"  # RE2: ``$`` is the end of the text only
_OTHER_KINDS = (
    "bool_value",
    "double_value",
    "array_value",
    "kvlist_value",
    "bytes_value",
    "string_value_strindex",
)
_HEX = np.array([list(f"{i:02x}".encode()) for i in range(256)], dtype=np.uint8)


def as_numpy(array: pa.Array, dtype: type = np.int64) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=dtype)


def other_kind(values: pa.Array) -> np.ndarray:
    """Per AnyValue: set to a kind the fast path does not take, to several kinds, or to none (an
    empty AnyValue reads as None on the reference path)."""
    flags = np.zeros(len(values), dtype=bool)
    set_count = np.zeros(len(values), dtype=np.int64)
    for name in ("string_value", "int_value", *_OTHER_KINDS):
        valid = as_numpy(pc.is_valid(pc.struct_field(values, name)), bool)
        set_count += valid
        if name in _OTHER_KINDS:
            flags |= valid
    return flags | (set_count != 1)


def hex_ids(ids: pa.Array, size: int) -> pa.Array:
    """``id.hex()`` where the id has ``size`` bytes, "" elsewhere (validate.py's rule)."""
    n = len(ids)
    right = as_numpy(pc.equal(pc.binary_length(ids), size), bool)
    if not right.any():
        return pa.array([""] * n, pa.string())
    picked = ids.filter(pa.array(right))
    bounds = np.frombuffer(picked.buffers()[1], np.int32)[picked.offset : picked.offset + len(picked) + 1]
    raw = np.frombuffer(picked.buffers()[2], np.uint8)[bounds[0] : bounds[-1]]
    text = _HEX[raw].tobytes()
    width = 2 * size
    offsets = np.zeros(n + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(right * width)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(text))


def policies(
    tenants: list[str], retain_days: RetainDays, hot_days: RetainDays | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(retain days, hot days, failed) per tenant: enrich.py's reading of the policies."""
    keep = np.zeros(len(tenants), np.int64)
    hot = np.zeros(len(tenants), np.int64)
    failed = np.zeros(len(tenants), bool)
    for i, tenant in enumerate(tenants):
        try:
            keep[i] = dt.timedelta(days=retain_days(tenant)).days
            hot[i] = dt.timedelta(days=hot_days(tenant)).days if hot_days else keep[i]
        except (OverflowError, ValueError, TypeError):
            failed[i] = True
    return keep, hot, failed


def may_be_unsafe(text: pa.Array) -> bool:
    """False when no value can hold NUL or a bidi control (their UTF-8 starts 0x00, 0xD8 or
    0xE2): a scan of the data buffer instead of a regular expression per value."""
    data = text.buffers()[2]
    if data is None:
        return False
    raw = data.to_pybytes()
    return b"\x00" in raw or b"\xd8" in raw or b"\xe2" in raw


#: a number orjson reads as a float (a fraction or exponent follows a digit) or past 64 bits
_FLOATISH = r"[0-9][.eE]|[0-9]{19}"


def changes_column(values: pa.Array, wanted: np.ndarray, bad: np.ndarray) -> pa.Array:
    """canonical_changes of each wanted value ("" elsewhere); a refused one marks ``bad``. Where
    the text has no number orjson would read as a float, orjson's text is the reference's."""
    floatish = as_numpy(pc.fill_null(pc.match_substring_regex(values, _FLOATISH), True), bool)
    wanted = wanted & as_numpy(pc.fill_null(pc.not_equal(values, ""), False), bool)
    indices = np.nonzero(wanted)[0]
    out = np.full(len(values), "", dtype=object)
    if not len(indices):
        return pa.array(out, pa.string())
    texts = values.take(pa.array(indices)).to_pylist()
    loads, dumps, sort = orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS
    results: list[str | None] = []
    append = results.append
    for value, maybe_float in zip(texts, floatish[indices].tolist(), strict=True):
        try:
            if maybe_float:
                raise ValueError
            parsed = loads(value)
            if type(parsed) is not dict:
                raise ValueError
            text = dumps(parsed, option=sort).decode()
            if len(text) > MAX_CHANGES_CHARS:
                raise ValueError
        except (ValueError, TypeError):  # orjson: JSONDecodeError, JSONEncodeError (nesting)
            try:
                text = canonical_changes(value)
                text.encode()  # a lone surrogate (from "\\ud800") has no UTF-8: the reference's to fail on
            except (InvalidChanges, UnicodeEncodeError, RecursionError):  # the reference decides
                append(None)
                continue
        append(text)
    refused = np.array([r is None for r in results], dtype=bool)
    bad[indices[refused]] = True
    out[indices] = results
    return pa.array(out, pa.string())


def is_verb(text: pa.Array) -> pa.Array:
    return pc.or_(pc.is_in(text, _KNOWN_VERBS), pc.match_substring_regex(text, _VERB))
