"""The journal's start-up check: were acknowledged records removed while the receiver was down?

Compares what the segment files hold with the durable marks of :mod:`receiver.journal.state`.
Damage found is a :class:`JournalFinding`; the receiver logs it loudly, counts it in /metrics
(``otel_audit_journal_tamper_findings``) and records it in the store, where ``otel-audit verify``,
``/api/verify`` and the compliance page report it until an operator acknowledges it
(``otel-audit journal-ack``).

What is told apart:

- a **torn tail** (crash during a write): only records above ``acked_seq`` are affected; they
  were never acknowledged, so nothing is reported;
- **acknowledged records missing** (a segment truncated at or before an acknowledged record, a
  segment file deleted, a record overwritten so that its CRC fails): ``records-missing``, with
  the seq ranges;
- **the state file missing** while segment files remain: ``state-missing`` (nothing can be
  counted: the marks that would say what is missing are gone);
- **the state file unreadable** (both slots invalid): ``state-corrupt``.

Not detectable here: removing the state file together with every segment (or the whole
directory) looks like a new journal. Source-side gap detection (``receiver.sources``) still
names the events that never reached the store.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from receiver.journal.state import JournalState


@dataclass(frozen=True, slots=True)
class JournalFinding:
    kind: str
    detail: str
    journal: str
    #: acknowledged journal records known to be missing (0: unknown)
    records: int = 0
    first_seq: int = 0
    last_seq: int = 0
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    found_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted integers → inclusive runs, e.g. 1,2,3,7 → (1, 3), (7, 7)."""
    out: list[tuple[int, int]] = []
    for s in sorted(seqs):
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def format_ranges(runs: list[tuple[int, int]], limit: int = 5) -> str:
    text = ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in runs[:limit])
    return text + (f" and {len(runs) - limit} more ranges" if len(runs) > limit else "")


def check(
    directory: str,
    state: JournalState | None,
    present: set[int],
    segment_files: int,
    *,
    state_error: str = "",
) -> list[JournalFinding]:
    """The findings for a journal whose intact records have the seqs ``present``.
    ``state`` None: no (readable) state file; ``state_error`` says which."""
    if state is None:
        if state_error:
            return [
                JournalFinding("state-corrupt", f"journal state file unreadable: {state_error}", directory)
            ]
        if segment_files:
            return [
                JournalFinding(
                    "state-missing",
                    f"journal state file missing while {segment_files} segment file(s) remain: "
                    "acknowledged records may have been removed (their number cannot be known)",
                    directory,
                )
            ]
        return []
    gone = [(lo, hi) for lo, hi in state.gone]
    missing = [
        seq
        for seq in range(state.committed_seq + 1, state.acked_seq + 1)
        if seq not in present and not any(lo <= seq <= hi for lo, hi in gone)
    ]
    if not missing:
        return []
    runs = ranges(missing)
    return [
        JournalFinding(
            "records-missing",
            f"{len(missing)} acknowledged journal record(s) not yet in the store are missing "
            f"(journal seq {format_ranges(runs)}): segment truncated, deleted or overwritten",
            f"{directory} ({state.journal_id})",
            records=len(missing),
            first_seq=missing[0],
            last_seq=missing[-1],
        )
    ]


def append_outbox(path: Path, findings: list[JournalFinding], *, fsync: bool = True) -> None:
    """Append the findings to ``FINDINGS.jsonl`` (one JSON object a line), durably: the receiver
    copies them into the store (:mod:`receiver.journal.record`), which may be down right now."""
    lines = "".join(json.dumps(dict(asdict(f), found_at=f.found_at.isoformat())) + "\n" for f in findings)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, lines.encode())
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        logging.getLogger("otel_audit.journal").error("cannot write %s: %s", path, exc)
