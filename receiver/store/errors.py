"""Which store errors are about the data (retrying the same rows can never succeed) and which
are about the store (unavailable, a timeout, a lock: retry later).

The journal's commit thread retries a failed batch with backoff; a batch the engine *rejects*
would be retried forever and fill the journal, so it is split to isolate the rows at fault
(:mod:`receiver.journal.quarantine`). Only errors that are surely the rows' fault count as
rejections: a ClickHouse error code for bad data, types or schema, an Arrow conversion error,
or a column missing from a record (journaled by an older version).
Anything else (unknown errors included) is treated as transient: kept in the journal and
retried, never quarantined on a guess.
"""

from __future__ import annotations

import re

import pyarrow as pa

from receiver.store.base import StoreUnavailable

#: ClickHouse error codes meaning "the engine refuses these rows as they are"
REJECTED_DATA_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        8,  # THERE_IS_NO_COLUMN
        10,  # NOT_FOUND_COLUMN_IN_BLOCK
        15,  # DUPLICATE_COLUMN
        16,  # NO_SUCH_COLUMN_IN_TABLE
        20,  # NUMBER_OF_COLUMNS_DOESNT_MATCH
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        43,  # ILLEGAL_TYPE_OF_ARGUMENT
        44,  # ILLEGAL_COLUMN
        50,  # UNKNOWN_TYPE
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        190,  # SIZES_OF_ARRAYS_DONT_MATCH
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        376,  # CANNOT_PARSE_UUID
        386,  # NO_COMMON_TYPE
        395,  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
        469,  # VIOLATED_CONSTRAINT
    }
)

_CODE = re.compile(r"\bcode:\s*(\d+)", re.IGNORECASE)
_MISSING_FIELD = "does not exist in schema"
_ARROW_DATA_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


def error_code(exc: BaseException) -> int | None:
    """The ClickHouse error code of ``exc`` (its ``code`` attribute, else ``Code: N`` in its text)."""
    code = getattr(exc, "code", None)
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


def is_rejection(exc: BaseException) -> bool:
    """True when the store refused the rows themselves (retrying them cannot succeed)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StoreUnavailable):
            return False
        if isinstance(current, _ARROW_DATA_ERRORS):
            return True
        if isinstance(current, KeyError) and _MISSING_FIELD in str(current):
            return True  # pyarrow: a column the chain or the insert needs is not in the record
        if error_code(current) in REJECTED_DATA_CODES:
            return True
        current = current.__cause__
    return False
