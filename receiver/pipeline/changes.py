"""The ``audit.changes`` diff as stored: a JSON object re-serialised canonically (sorted keys, no
spaces, non-ASCII kept), so equal diffs are equal text whatever the sender's formatting.

The reference is the json module (``json.dumps(json.loads(text), sort_keys=True, …)``). orjson
gives the same text several times faster for what it reads the same way: a JSON object whose
numbers are all integers of up to 18 digits. Floats (orjson formats them differently: ``1e16``
against ``1e+16``), longer integers (orjson turns those past 64 bits into floats) and anything
orjson refuses (NaN, lone surrogates, nesting past 1024) take the json module's path, which also
decides every rejection. tests/receiver/test_pipeline_changes.py checks the equality.
"""

from __future__ import annotations

import json
import re
from typing import Any

from otel_audit import attributes as A

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency of the receiver extra
    orjson = None  # type: ignore[assignment]

MAX_CHANGES_CHARS = 262_144
#: a number with a fraction or an exponent, or of 19 digits or more (also matches inside
#: strings: those texts just take the json module's path)
_NOT_FOR_ORJSON = re.compile(r"\d(?:[.eE]|\d{18})")


class InvalidChanges(ValueError):
    """The value is not a storable change set; the message says why."""


def canonical_changes(value: Any) -> str:
    """The canonical text of a change set ("" for none), or :class:`InvalidChanges`."""
    if value is None or value == "":
        return ""
    if type(value) is str and orjson is not None and _NOT_FOR_ORJSON.search(value) is None:
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            parsed = None  # the json module decides: it reads a few texts orjson refuses
        if type(parsed) is dict:
            # orjson escapes every control character, NUL included, as json does
            text = orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS).decode()
            if len(text) > MAX_CHANGES_CHARS:
                raise InvalidChanges(f"{A.CHANGES} is larger than {MAX_CHANGES_CHARS} characters")
            return text
    return stdlib_changes(value)


def stdlib_changes(value: Any) -> str:
    """The reference conversion, with the json module alone."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidChanges(f"{A.CHANGES} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise InvalidChanges(f"{A.CHANGES} must be a JSON object of {{field: {{old, new}}}}")
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)
    if len(text) > MAX_CHANGES_CHARS:
        raise InvalidChanges(f"{A.CHANGES} is larger than {MAX_CHANGES_CHARS} characters")
    return text.replace("\x00", "\\u0000")
