"""The ``audit.changes`` diff as stored: a JSON object re-serialised canonically (sorted keys, no
spaces, non-ASCII kept), so equal diffs are equal text whatever the sender's formatting.

The reference is the json module (``json.dumps(json.loads(text), sort_keys=True, …)``). orjson
gives the same text several times faster for what it reads the same way: a JSON object without
floats. orjson reads a float exactly where the text has a number with a fraction or an exponent
(it formats some of those differently: ``0.00001`` against ``1e-05``) or an integer beyond 64
bits (which the json module keeps as an integer); such objects, and anything orjson refuses
(NaN, lone surrogates, nesting past 1024 levels to read or 254 to write, invalid JSON), take
the json module's path, which also decides every rejection. Non-finite numbers (NaN, Infinity,
a number too large for a double) are rejected: they have no JSON form. tests/receiver/test_pipeline_changes.py
checks the equality.
"""

from __future__ import annotations

import json
from typing import Any

from otel_audit import attributes as A

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency of the receiver extra
    orjson = None  # type: ignore[assignment]

MAX_CHANGES_CHARS = 262_144


class InvalidChanges(ValueError):
    """The value is not a storable change set; the message says why."""


def canonical_changes(value: Any) -> str:
    """The canonical text of a change set ("" for none), or :class:`InvalidChanges`."""
    if value is None or value == "":
        return ""
    if type(value) is str and orjson is not None:
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            parsed = None  # the json module decides: it reads a few texts orjson refuses
        if type(parsed) is dict and _floatless(parsed):
            try:
                # orjson escapes every control character, NUL included, as json does
                text = orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS).decode()
            except orjson.JSONEncodeError:
                pass  # nested past orjson's 254 levels for writing
            else:
                if len(text) > MAX_CHANGES_CHARS:
                    raise InvalidChanges(f"{A.CHANGES} is larger than {MAX_CHANGES_CHARS} characters")
                return text
    return stdlib_changes(value)


def _floatless(parsed: dict[str, Any]) -> bool:
    # the usual shape, {field: {"old": x, "new": y}}, without building a work list
    for value in parsed.values():
        kind = type(value)
        if kind is dict:
            for leaf in value.values():
                leaf_kind = type(leaf)
                if leaf_kind is float or (
                    (leaf_kind is dict or leaf_kind is list) and not _deep_floatless(leaf)
                ):
                    return False
        elif kind is float or (kind is list and not _deep_floatless(value)):
            return False
    return True


def _deep_floatless(node: dict[str, Any] | list[Any]) -> bool:
    todo: list[Any] = [node.values() if type(node) is dict else node]
    while todo:
        for value in todo.pop():
            kind = type(value)
            if kind is float:
                return False
            if kind is dict:
                todo.append(value.values())
            elif kind is list:
                todo.append(value)
    return True


NON_FINITE = f"{A.CHANGES} holds a non-finite number (NaN or Infinity), which JSON cannot represent"


def _non_finite(name: str) -> Any:
    raise InvalidChanges(NON_FINITE)


def stdlib_changes(value: Any) -> str:
    """The reference conversion, with the json module alone."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value, parse_constant=_non_finite)
        except InvalidChanges:
            raise
        except ValueError as exc:
            raise InvalidChanges(f"{A.CHANGES} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise InvalidChanges(f"{A.CHANGES} must be a JSON object of {{field: {{old, new}}}}")
    try:
        # NaN and Infinity are not JSON (RFC 8259): a kvlist's double, or a number like 1e999 that
        # reads as infinite, would be stored as text no JSON reader of the API takes
        text = json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str, allow_nan=False
        )
    except ValueError as exc:
        raise InvalidChanges(NON_FINITE) from exc
    if len(text) > MAX_CHANGES_CHARS:
        raise InvalidChanges(f"{A.CHANGES} is larger than {MAX_CHANGES_CHARS} characters")
    return text.replace("\x00", "\\u0000")
