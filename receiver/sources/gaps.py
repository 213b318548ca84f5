"""Which events each source sent that never arrived, from the ``source_seqs`` aggregate.

The emitter stamps every event with ``audit.source.id`` (random per process) and
``audit.source.seq`` (1, 2, 3, … per source; ``otel_audit.source``). In the store a materialized
view keeps, per (tenant, source, minute of arrival), a roaring bitmap of the numbers that arrived
(``schema/090``), filled by the events INSERT itself. A number is missing when it is absent while
a higher number from the same source arrived more than ``grace`` ago: events still in flight (an
emitter's batch queue, its disk spool replaying after an outage, the receiver's journal) are not
yet gaps. Duplicates (retries) are set members once, never gaps. A source's first events count
too: numbering starts at 1, so a source whose first arrived number is 5 lost 1..4.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from receiver.store.sql import Statement, check_identifier

TABLE = "source_seqs"
#: holes listed per source (the count is always exact)
MAX_RANGES = 20


@dataclass(frozen=True, slots=True)
class SourceGap:
    tenant: str
    source_id: str
    service: str
    missing: int
    #: inclusive seq ranges that never arrived (the first ``MAX_RANGES``)
    ranges: tuple[tuple[int, int], ...]
    #: the highest number past the grace period (the gaps are below it)
    settled_max: int

    def detail(self) -> str:
        shown = ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in self.ranges)
        more = "" if len(self.ranges) < MAX_RANGES else ", …"
        service = f" (service {self.service})" if self.service else ""
        return (
            f"{self.missing} event(s) sent by source {self.source_id}{service} never arrived "
            f"(seq {shown}{more})"
        )


def gaps_statement(database: str, tenants: tuple[str, ...] | None, settled_before: dt.datetime) -> Statement:
    db = check_identifier(database)
    where = "WHERE tenant_id IN {tenants:Array(String)}" if tenants is not None else ""
    sql = f"""
SELECT tenant_id, source_id, service, settled_max, settled_max - arrived AS missing,
    arraySlice(arrayFilter(r -> r.1 <= r.2, arrayMap((p, n) -> (p + 1, n - 1),
        arrayPopBack(present), arrayPopFront(present))), 1, {MAX_RANGES}) AS holes
FROM (
    SELECT tenant_id, source_id, service, settled_max,
        bitmapSubsetInRange(all_seqs, toUInt64(1), toUInt64(settled_max + 1)) AS upto,
        bitmapCardinality(upto) AS arrived,
        arrayConcat([toUInt64(0)], bitmapToArray(upto)) AS present
    FROM (
        SELECT tenant_id, source_id, any(service_name) AS service,
            groupBitmapMergeState(seqs) AS all_seqs,
            bitmapMax(groupBitmapMergeStateIf(seqs, minute < {{settled:DateTime64(6, 'UTC')}})) AS settled_max
        FROM {db}.{TABLE} {where}
        GROUP BY tenant_id, source_id
    )
    WHERE settled_max > 0 AND bitmapCardinality(
        bitmapSubsetInRange(all_seqs, toUInt64(1), toUInt64(settled_max + 1))) < settled_max
)
ORDER BY tenant_id, source_id"""  # noqa: S608 - identifiers checked, values bound
    params: dict[str, object] = {"settled": settled_before.replace(tzinfo=None)}
    if tenants is not None:
        params["tenants"] = list(tenants)
    return Statement(sql, params)


def source_gaps(
    store: object, tenants: tuple[str, ...] | None, now: dt.datetime, grace: dt.timedelta
) -> list[SourceGap]:
    """Every source of ``tenants`` (None: all) with events that never arrived."""
    rows = store.query_table(gaps_statement(store.database, tenants, now - grace)).to_pylist()  # type: ignore[attr-defined]
    return [
        SourceGap(
            tenant=str(r["tenant_id"]),
            source_id=str(r["source_id"]),
            service=str(r["service"]),
            missing=int(r["missing"]),
            ranges=tuple(_pair(h) for h in r["holes"]),
            settled_max=int(r["settled_max"]),
        )
        for r in rows
    ]


def _pair(hole: object) -> tuple[int, int]:
    lo, hi = hole.values() if isinstance(hole, dict) else hole  # type: ignore[misc]
    return int(lo), int(hi)
