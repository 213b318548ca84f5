"""Change sets: ``before``/``after`` dicts → ``{"field": {"old": …, "new": …}}``, redacted and JSON-safe.

Nested dicts are flattened to dotted names (``address.city``); an added field has ``old: None``, a
removed one ``new: None``; unchanged fields are left out. A field whose name, or any segment of its
dotted path, is in the redaction list has both values replaced by ``"[REDACTED]"`` before anything
leaves the process. Values are made JSON-safe (datetime → ISO 8601, Decimal/UUID → str, set → list).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any
from uuid import UUID

from otel_audit.attributes import REDACTED

Changes = dict[str, dict[str, Any]]
_MISSING = object()


def _normalize(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


@dataclass(frozen=True)
class Redactor:
    """Decides by field name whether a value may leave the process."""

    names: frozenset[str]

    @classmethod
    def of(cls, names: Iterable[str]) -> Redactor:
        return cls(frozenset(_normalize(n) for n in names if n))

    def is_sensitive_name(self, name: str) -> bool:
        return _normalize(name) in self.names

    def is_sensitive(self, path: str) -> bool:
        """True when any ``.``-separated segment of ``path`` is a sensitive name."""
        return _sensitive_path(self.names, path)


@lru_cache(maxsize=4096)
def _sensitive_path(names: frozenset[str], path: str) -> bool:
    return any(_normalize(segment) in names for segment in path.split("."))


_NO_REDACTION = Redactor(frozenset())


def json_safe(value: Any, redactor: Redactor = _NO_REDACTION) -> Any:
    """``value`` as plain JSON types; mapping entries under a sensitive key become ``[REDACTED]``."""
    if value is None or isinstance(value, (str, bool, int)):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if redactor.is_sensitive_name(str(k)) else json_safe(v, redactor)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [json_safe(v, redactor) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(v, redactor) for v in value), key=lambda v: (type(v).__name__, str(v)))
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return json_safe(value.value, redactor)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if is_dataclass(value) and not isinstance(value, type):
        return json_safe(asdict(value), redactor)
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    return str(value)


def flatten(data: Mapping[str, Any], redactor: Redactor = _NO_REDACTION, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; an empty nested dict stays a ``{}`` leaf."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, redactor, name))
        else:
            out[name] = json_safe(value, redactor)
    return out


def diff(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    redactor: Redactor = _NO_REDACTION,
) -> Changes:
    """The fields that differ between ``before`` and ``after``, sorted by name, redacted."""
    old = flatten(before or {})  # compared unredacted: a change hidden by redaction is still a change
    new = flatten(after or {})
    changes: Changes = {}
    for name in sorted(old.keys() | new.keys()):
        old_value = old.get(name, _MISSING)
        new_value = new.get(name, _MISSING)
        if old_value is not _MISSING and new_value is not _MISSING and old_value == new_value:
            continue
        if redactor.is_sensitive(name):
            changes[name] = {"old": REDACTED, "new": REDACTED}
        else:
            changes[name] = {
                "old": None if old_value is _MISSING else json_safe(old_value, redactor),
                "new": None if new_value is _MISSING else json_safe(new_value, redactor),
            }
    return changes


def redact_changes(changes: Mapping[str, Any], redactor: Redactor) -> Changes:
    """An explicit ``changes=`` mapping made JSON-safe, with sensitive fields redacted."""
    out: Changes = {}
    for key, entry in changes.items():
        name = str(key)
        if redactor.is_sensitive(name):
            out[name] = {"old": REDACTED, "new": REDACTED}
        elif isinstance(entry, Mapping):
            out[name] = json_safe(entry, redactor)
        else:
            out[name] = {"old": None, "new": json_safe(entry, redactor)}
    return out


def build_changes(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    changes: Mapping[str, Any] | None,
    redactor: Redactor,
) -> Changes:
    """The diff of ``before``/``after``, with the explicit ``changes`` entries laid over it."""
    out = diff(before, after, redactor) if before is not None or after is not None else {}
    if changes:
        out.update(redact_changes(changes, redactor))
    return out


def dumps(changes: Changes) -> str:
    """The wire form of ``audit.changes``: compact JSON, UTF-8 kept."""
    return json.dumps(changes, separators=(",", ":"), ensure_ascii=False, default=str)
