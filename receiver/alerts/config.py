"""The ``alerts:`` section of the receiver's config (SPEC section 10): destinations and rules."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from receiver.filters import FilterError, check_match

_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhd])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: columns a rule may group by (SPEC section 1 columns that identify who, what or where)
GROUP_COLUMNS = (
    "user_id",
    "ip_address",
    "resource_type",
    "resource_id",
    "action",
    "outcome",
    "event_name",
    "service_name",
    "actor_type",
    "session_id",
)
#: ``match`` keys beyond the search filters: the emitting service
EXTRA_MATCH_KEYS = ("service_name",)


def parse_duration(value: str | int | float) -> float:
    """``90`` (seconds), ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"`` → seconds."""
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        found = _DURATION.match(value)
        if not found:
            raise ValueError(f"{value!r} is not a duration like 30s, 5m, 2h or 1d")
        seconds = float(int(found.group(1)) * _SECONDS[found.group(2)])
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Destination(_Frozen):
    name: str = Field(min_length=1, description="what rules call this destination")
    kind: Literal["webhook", "slack", "otlp"] = Field(
        description="webhook: signed JSON POST (SPEC 10); slack: a Slack-compatible incoming webhook; "
        "otlp: an OTLP/HTTP log record to a Collector (url is its /v1/logs endpoint)"
    )
    url: str = Field(pattern=r"^https?://", description="where alerts are POSTed")
    secret: str = Field(
        default="", description="HMAC-SHA256 key of the X-Otel-Audit-Signature header (webhook)"
    )
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers")
    timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="per delivery attempt")


class Rule(_Frozen):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="the rule's name, in each alert")
    kind: Literal["threshold", "match", "silence", "sql"] = Field(
        description="threshold: at least `threshold` matching events per group within `window`; "
        "match: every matching event (one alert per group per evaluation); silence: no matching event "
        "for `window` from a group that sent some before; sql: each row `query` returns"
    )
    match: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="filters (SPEC sections 3 and 8 forms: repeat, !exclude, prefix*, CIDR) and service_name",
    )
    group_by: tuple[str, ...] = Field(default=(), description=f"columns: {', '.join(GROUP_COLUMNS)}")
    threshold: int = Field(default=1, ge=1, description="threshold rules: events per group and window")
    window: float = Field(default=300.0, description="sliding window (30s, 5m, 2h, 1d)")
    severity: Literal["info", "low", "medium", "high", "critical"] = Field(
        default="medium", description="carried in each alert"
    )
    destinations: tuple[str, ...] = Field(default=(), description="names from alerts.destinations")
    tenants: tuple[str, ...] = Field(default=("*",), description='tenants the rule watches ("*": all)')
    query: str = Field(
        default="",
        description="sql rules: a SELECT over audit.audit_events returning tenant_id and optionally "
        "`count` and group columns; {window_start:DateTime64(6)} and {window_end:DateTime64(6)} are bound",
    )
    rationale: str = Field(default="", description="why the rule exists and the control it serves")

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> float:
        return parse_duration(value)

    @field_validator("group_by")
    @classmethod
    def _group(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in value if c not in GROUP_COLUMNS]
        if bad:
            raise ValueError(f"group_by: not a groupable column: {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> Rule:
        try:
            check_match(self.match, EXTRA_MATCH_KEYS)
        except FilterError as exc:
            raise ValueError(f"match: {exc}") from exc
        if self.kind == "sql" and not self.query.strip():
            raise ValueError("a sql rule needs a query")
        if self.kind != "sql" and self.query:
            raise ValueError("query is for sql rules only")
        return self


class Alerts(_Frozen):
    enabled: bool = Field(default=True, description="evaluate rules at all")
    interval_seconds: float = Field(default=15.0, ge=1, le=3600, description="how often rules are evaluated")
    default_pack: bool = Field(
        default=True, description="add the shipped PCI DSS 10.2.1.x rule pack (docs/ALERTS.md)"
    )
    destinations: tuple[Destination, ...] = Field(default=(), description="where alerts are delivered")
    rules: tuple[Rule, ...] = Field(default=(), description="the rules, besides the shipped pack")
    pack_destinations: tuple[str, ...] = Field(
        default=(), description="destinations of the shipped rule pack's alerts (names from destinations)"
    )
    give_up_after: float = Field(
        default=86400.0,
        description="a delivery still failing this long after the alert fired is dead-lettered (counted)",
    )

    @field_validator("give_up_after", mode="before")
    @classmethod
    def _give_up(cls, value: Any) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _names(self) -> Alerts:
        names = [d.name for d in self.destinations]
        if len(names) != len(set(names)):
            raise ValueError("alerts.destinations: names must be unique")
        rules = [r.name for r in self.rules]
        if len(rules) != len(set(rules)):
            raise ValueError("alerts.rules: names must be unique")
        for rule in (*self.rules, Rule(name="pack", kind="match", destinations=self.pack_destinations)):
            missing = sorted(set(rule.destinations) - set(names))
            if missing:
                raise ValueError(f"rule {rule.name}: unknown destination(s) {', '.join(missing)}")
        return self
