"""Findings beside the verifiable log: journal tampering and source-side gaps.

One call, :func:`collect`, for ``otel-audit verify``, ``/api/verify`` and the compliance page.
Each :class:`Finding` names a tenant (``*``: the receiver as a whole, e.g. its journal), a kind,
one readable line and its counts; any finding makes verify exit non-zero.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from receiver.journal.record import unacknowledged
from receiver.sources.gaps import source_gaps

ALL_TENANTS = "*"


@dataclass(frozen=True, slots=True)
class Finding:
    tenant: str
    kind: str
    detail: str
    counts: dict[str, int] = field(default_factory=dict)
    id: str = ""

    def summary(self) -> str:
        return f"{self.tenant}: {self.kind}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tenant": self.tenant, "kind": self.kind, "detail": self.detail, **self.counts}
        if self.id:
            out["id"] = self.id
        return out


def collect(
    store: Any, tenants: tuple[str, ...] | None, now: dt.datetime, grace: dt.timedelta
) -> list[Finding]:
    """Unacknowledged journal findings, then every source gap of ``tenants`` (None: all)."""
    out = [
        Finding(
            ALL_TENANTS,
            f"journal-{row['kind']}",
            f"{row['detail']} (journal {row['journal']}, found {row['found_at']:%Y-%m-%d %H:%M:%S} UTC;"
            f" acknowledge with `otel-audit journal-ack {row['id']}`)",
            {
                "records": int(row["records"]),
                "first_seq": int(row["first_seq"]),
                "last_seq": int(row["last_seq"]),
            },
            id=row["id"],
        )
        for row in unacknowledged(store)
    ]
    for gap in source_gaps(store, tenants, now, grace):
        out.append(
            Finding(
                gap.tenant,
                "source-gap",
                gap.detail(),
                {
                    "missing": gap.missing,
                    "first_seq": gap.ranges[0][0] if gap.ranges else 0,
                    "last_seq": gap.ranges[-1][1] if gap.ranges else 0,
                },
                id=gap.source_id,
            )
        )
    return out
