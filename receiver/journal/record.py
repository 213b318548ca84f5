"""Journal findings in the store: recorded at start, reported by verify until acknowledged.

:meth:`Journal.open` appends what its start-up check found to ``<journal>/FINDINGS.jsonl``
(the outbox: the store may be down at that moment). :func:`publish` copies every finding of
that file the store does not hold yet into ``journal_findings``; ``otel-audit verify``,
``/api/verify`` and the compliance page report each one (exit 1) until an operator records an
acknowledgement in ``journal_finding_acks`` (``otel-audit journal-ack``): who, when, why. Both
tables are append-only; an acknowledgement never removes the finding.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from receiver.journal.journal import FINDINGS_FILE
from receiver.store.sql import Statement, check_identifier

log = logging.getLogger("otel_audit.journal")


def _read_outbox(directory: Path) -> list[dict[str, Any]]:
    path = Path(directory) / FINDINGS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            log.error("%s: unreadable line skipped: %.200s", path, line)
    return out


def publish(store: Any, directory: Path) -> int:
    """Copy the outbox's findings the store lacks into it; returns how many were added."""
    pending = _read_outbox(directory)
    if not pending:
        return 0
    db = check_identifier(store.database)
    known = {
        str(i)
        for i in store.query_table(
            Statement(
                f"SELECT toString(id) AS id FROM {db}.journal_findings WHERE id IN {{ids:Array(UUID)}}",  # noqa: S608
                {"ids": [f["id"] for f in pending]},
            )
        )
        .column("id")
        .to_pylist()
    }
    added = 0
    for f in pending:
        if f["id"] in known:
            continue
        store.execute(
            Statement(
                f"INSERT INTO {db}.journal_findings"  # noqa: S608
                " (id, found_at, journal, kind, detail, records, first_seq, last_seq)"
                " SELECT {id:UUID}, parseDateTime64BestEffort({at:String}, 6, 'UTC'), {journal:String},"
                " {kind:String}, {detail:String}, {records:UInt64}, {first:UInt64}, {last:UInt64}",
                {
                    "id": f["id"],
                    "at": f["found_at"],
                    "journal": f["journal"],
                    "kind": f["kind"],
                    "detail": f["detail"],
                    "records": f["records"],
                    "first": f["first_seq"],
                    "last": f["last_seq"],
                },
            )
        )
        added += 1
    return added


def unacknowledged(store: Any) -> list[dict[str, Any]]:
    """Journal findings no operator acknowledged yet, oldest first."""
    db = check_identifier(store.database)
    return store.query_table(
        Statement(
            "SELECT toString(id) AS id, found_at, journal, kind, detail, records, first_seq, last_seq"  # noqa: S608
            f" FROM {db}.journal_findings FINAL"
            f" WHERE id NOT IN (SELECT finding_id FROM {db}.journal_finding_acks)"
            " ORDER BY found_at, id"
        )
    ).to_pylist()


def acknowledge(store: Any, ids: list[str], by: str, reason: str) -> int:
    """Record that ``by`` acknowledged these findings, and why; returns how many."""
    db = check_identifier(store.database)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for finding_id in ids:
        store.execute(
            Statement(
                f"INSERT INTO {db}.journal_finding_acks (finding_id, acknowledged_at, acknowledged_by, reason)"  # noqa: S608
                " SELECT {id:UUID}, {at:DateTime64(6, 'UTC')}, {by:String}, {reason:String}",
                {"id": finding_id, "at": now, "by": by, "reason": reason},
            )
        )
    return len(ids)


def report_at_start(journal: Any, store: Any, metrics: Any) -> None:
    """After :meth:`Journal.open`: count what it found, and copy the outbox into the store
    (a store that is down gets it at a later start; the outbox keeps it meanwhile)."""
    if journal.findings:
        metrics.journal_tamper_findings.inc(len(journal.findings))
    try:
        added = publish(store, journal.directory)
    except Exception as exc:  # noqa: BLE001 - the outbox keeps them for the next start
        log.error("cannot record journal findings in the store (kept in %s): %s", FINDINGS_FILE, exc)
        return
    if added:
        log.critical("%d journal finding(s) recorded; verify reports them until acknowledged", added)
