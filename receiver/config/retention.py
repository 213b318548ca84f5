"""How long events are kept: retention policies and presets, the archive location."""

from __future__ import annotations

from pydantic import Field, model_validator

from receiver.config.base import DEFAULT_HOT_DAYS, DEFAULT_RETAIN_DAYS, _Frozen

#: Named policies usable anywhere a policy is (``default: pci`` or ``{preset: hipaa, hot_days: 30}``):
#: SOC 2 auditors sample across a 12-month period (kept searchable for all of it); PCI DSS 10.5.1
#: wants 12 months with the last 3 immediately available; HIPAA documentation is kept 6 years.
PRESETS: dict[str, tuple[int, int]] = {
    "soc2": (365, 365),
    "pci": (90, 365),
    "hipaa": (365, 2190),
}


def _expand_preset(data: object) -> object:
    """``"pci"`` → ``{"hot_days": 90, "retain_days": 365}``; explicit fields win over the preset's."""
    if isinstance(data, str):
        data = {"preset": data}
    if isinstance(data, dict) and data.get("preset") is not None:
        name = data["preset"]
        if name not in PRESETS:
            raise ValueError(f"unknown retention preset {name!r}: use one of {', '.join(sorted(PRESETS))}")
        hot, retain = PRESETS[name]
        explicit = {k: v for k, v in data.items() if v is not None}
        return {"hot_days": hot, "retain_days": retain, **explicit}
    return data


class Policy(_Frozen):
    """How long a tenant's events stay searchable in the store (``hot_days``) and kept at all,
    in the store or the archive (``retain_days``)."""

    preset: str | None = Field(
        default=None, description="soc2 (365/365), pci (90/365) or hipaa (365/2190); explicit fields win"
    )
    hot_days: int = Field(
        default=DEFAULT_HOT_DAYS, ge=1, description="days an event stays searchable in the store"
    )
    retain_days: int = Field(
        default=DEFAULT_RETAIN_DAYS, ge=1, description="days an event is kept at all (store or archive)"
    )

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: object) -> object:
        return _expand_preset(data)

    @model_validator(mode="after")
    def _order(self) -> Policy:
        if self.hot_days > self.retain_days:
            raise ValueError("hot_days cannot exceed retain_days")
        return self


class PartialPolicy(_Frozen):
    """A tenant's override of the default policy; unset fields come from ``retention.default``."""

    preset: str | None = Field(default=None, description="soc2, pci or hipaa")
    hot_days: int | None = Field(default=None, ge=1, description="days searchable in the store")
    retain_days: int | None = Field(default=None, ge=1, description="days kept at all")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: object) -> object:
        return _expand_preset(data)


class Retention(_Frozen):
    default: Policy = Field(default=Policy(), description="the policy of every tenant without its own")
    tenants: dict[str, PartialPolicy] = Field(default={}, description="tenant id → its policy")
    interval_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="how often `serve` runs the archive job, in seconds (0: never; `retention run` still works)",
    )

    def policy_for(self, tenant: str) -> Policy:
        override = self.tenants.get(tenant)
        if override is None:
            return self.default
        retain = override.retain_days or self.default.retain_days
        return Policy(
            preset=override.preset,
            hot_days=min(override.hot_days or self.default.hot_days, retain),
            retain_days=retain,
        )


class Archive(_Frozen):
    path: str = Field(
        default="./otel-audit-archive",
        description="a local directory, or s3://bucket/prefix?region=...&endpoint_override=host:port (pyarrow's S3)",
    )
