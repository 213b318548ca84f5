"""Row changes found by an ORM integration (SQLAlchemy, Django), held until the transaction commits.

``Change`` is one event to emit; ``merge`` folds a row's later updates in the same transaction into
its first event; ``emit`` records each under the request context it was made in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from otel_audit.context import AuditContext, reset_context, set_context
from otel_audit.recorder import changes_json, note_error, record_change


@dataclass(frozen=True)
class Change:
    """One event to emit after commit."""

    action: str
    resource_type: str
    resource_id: str
    #: ``{"field": {"old": …, "new": …}}``, or already redacted wire JSON (``changes_json``) when
    #: many events share it (a bulk statement's rows)
    changes: dict[str, dict[str, Any]] | str | None
    context: AuditContext
    extra: dict[str, Any] = field(default_factory=dict)


def merge(changes: Iterable[Change]) -> list[Change]:
    """One event per row and transaction: later flushes' updates of a created or updated row fold
    into its first event (the oldest ``old``, the newest ``new``)."""
    out: list[Change] = []
    seen: dict[tuple[str, str], Change] = {}
    for change in changes:
        key = (change.resource_type, change.resource_id)
        first = seen.get(key) if change.resource_id and not change.extra else None
        if (
            first is not None
            and change.action == "update"
            and first.action in ("create", "update")
            and isinstance(first.changes, dict)
            and isinstance(change.changes, dict)
        ):
            for name, entry in change.changes.items():
                if name in first.changes:
                    first.changes[name]["new"] = entry["new"]
                else:
                    first.changes[name] = dict(entry)
            continue
        if change.resource_id and not change.extra:
            seen[key] = change
        out.append(change)
    return out


def emit(changes: Iterable[Change]) -> None:
    """Record each change under the request context it was made in. Never raises."""
    context: AuditContext | None = None
    token = None
    try:
        for change in changes:
            if change.context is not context:  # a bulk statement's rows share one: set it once
                if token is not None:
                    reset_context(token)
                context = change.context
                token = set_context(context)
            diff = change.changes
            try:
                if diff is not None and not isinstance(diff, str):
                    diff = changes_json(diff)
            except Exception as exc:  # never raise into the application's commit
                note_error(exc)
                continue
            record_change(change.action, change.resource_type, change.resource_id, diff, change.extra)
    finally:
        if token is not None:
            reset_context(token)
