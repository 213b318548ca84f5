"""What verify reports: findings (:class:`Damage`) per log and tenant, as text and JSON.

Every check adds :class:`Damage` (kind, tenant, origin, leaf, detail) to a tenant's
``TenantReport.damages``; the first one is the one the summary names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NO_EXTERNAL_COPY = (
    "no published checkpoint copy was compared: a rewrite by someone holding the signing key"
    " cannot be excluded (give --checkpoints DIR with a copy kept elsewhere)"
)


@dataclass(frozen=True, slots=True)
class Damage:
    kind: str
    tenant: str
    origin: str
    leaf: int | None
    detail: str

    def text(self) -> str:
        where = f"log {self.origin or '(none)'}" + (f" leaf {self.leaf:,}" if self.leaf is not None else "")
        return f"{self.kind} at {where}: {self.detail}"


@dataclass(slots=True)
class LogReport:
    origin: str
    leaves: int = 0  # tree size
    events: int = 0  # stored events checked
    checkpoints: int = 0
    sealed: int = 0  # largest signed tree size


@dataclass(slots=True)
class TenantReport:
    tenant: str
    logs: list[LogReport] = field(default_factory=list)
    damages: list[Damage] = field(default_factory=list)
    signatures_checked: bool = True
    external_copy: bool = False

    @property
    def events(self) -> int:
        return sum(lg.events for lg in self.logs)

    @property
    def checkpoints(self) -> int:
        return sum(lg.checkpoints for lg in self.logs)

    @property
    def damage(self) -> Damage | None:
        return self.damages[0] if self.damages else None

    @property
    def status(self) -> str:
        return "damaged" if self.damages else "intact"

    def summary(self) -> str:
        head = (
            f"{self.tenant}: {_plural(self.events, 'event')} in {_plural(len(self.logs), 'log')},"
            f" {_plural(self.checkpoints, 'checkpoint')}"
        )
        if self.damages:
            more = f" (+{len(self.damages) - 1} more)" if len(self.damages) > 1 else ""
            return f"{head}, DAMAGED: {self.damages[0].text()}{more}"
        notes = []
        if not self.signatures_checked:
            notes.append("signatures not checked: no public key")
        if not self.external_copy:
            notes.append(NO_EXTERNAL_COPY)
        return head + ", intact" + "".join(f" ({n})" for n in notes)

    def to_json(self) -> dict[str, Any]:
        first = self.damage
        return {
            "tenant": self.tenant,
            "status": self.status,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "damage": first.kind if first else None,
            "origin": first.origin if first else None,
            "leaf": first.leaf if first else None,
            "first_bad_seq": first.leaf if first else None,  # the admin page's older name
            "detail": first.detail if first else None,
            "damages": [
                {"kind": d.kind, "origin": d.origin, "leaf": d.leaf, "detail": d.detail} for d in self.damages
            ],
            "signatures_checked": self.signatures_checked,
            "external_copy": self.external_copy,
            "summary": self.summary(),
            "logs": [
                {
                    "origin": lg.origin,
                    "leaves": lg.leaves,
                    "events": lg.events,
                    "checkpoints": lg.checkpoints,
                    "sealed": lg.sealed,
                }
                for lg in self.logs
            ],
        }


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
