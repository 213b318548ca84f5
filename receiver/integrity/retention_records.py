"""Signed retention records: the audit events that say which leaves of a log left the store.

When the retention job moves or drops events, it records, per log, an audit event with action
``log_retention`` whose attributes name the origin (``otel_audit.log.origin``), the leaf
ranges removed (``otel_audit.log.leaves``, ``a-b,c-d``, inclusive) and the SHA-256 of the
archive manifest that holds them (``otel_audit.archive.manifest_sha256``). The record is itself
a leaf of the tenant's log, so it is covered by the log's signed checkpoints: a missing leaf is
damage unless such a record covers it.

Records leave the store too (archived or expired like any event), so each new record for a
log carries the union of every range already covered plus its own: the newest record alone
tells the whole story, and older ones may go.
"""

from __future__ import annotations

from typing import Any

ACTION = "log_retention"
ORIGIN_ATTR = "otel_audit.log.origin"
LEAVES_ATTR = "otel_audit.log.leaves"
MANIFEST_ATTR = "otel_audit.archive.manifest_sha256"


def runs(leaves: list[int]) -> list[tuple[int, int]]:
    """Sorted leaf indexes as inclusive runs."""
    out: list[tuple[int, int]] = []
    for leaf in sorted(set(leaves)):
        if out and out[-1][1] + 1 == leaf:
            out[-1] = (out[-1][0], leaf)
        else:
            out.append((leaf, leaf))
    return out


def format_runs(ranges: list[tuple[int, int]]) -> str:
    return ",".join(f"{a}-{b}" for a, b in ranges)


def parse_runs(text: str) -> list[tuple[int, int]]:
    out = []
    for part in filter(None, text.split(",")):
        a, _, b = part.partition("-")
        out.append((int(a), int(b)))
    return out


def merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def record_attributes(
    origin: str,
    leaves: list[int],
    manifest_sha256: str,
    already: list[tuple[int, int]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    ranges = merge(list(already) + runs(leaves))
    return {ORIGIN_ATTR: origin, LEAVES_ATTR: format_runs(ranges), MANIFEST_ATTR: manifest_sha256}


def uncovered(leaves: list[int], covered: list[tuple[int, int]]) -> list[int]:
    ranges = merge(covered)
    import bisect

    starts = [a for a, _ in ranges]
    out = []
    for leaf in leaves:
        i = bisect.bisect_right(starts, leaf) - 1
        if i < 0 or leaf > ranges[i][1]:
            out.append(leaf)
    return out


def covered_ranges(store: Any, tenant: str, origin: str) -> list[tuple[int, int]]:
    """The leaf ranges of ``origin`` that stored retention records of ``tenant`` cover."""
    out: list[tuple[int, int]] = []
    for text in store.retention_leaves(tenant, origin):
        try:
            out += parse_runs(text)
        except ValueError:
            continue  # a malformed record covers nothing
    return out
