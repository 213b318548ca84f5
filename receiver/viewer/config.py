"""The ``viewer:`` section of the receiver's config (SPEC section 9): signing secrets, revocation,
who may frame the page, light theming and the fields a tenant never sees."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: fields of an event a vendor does not show its customers, unless the config says otherwise
DEFAULT_HIDDEN = ("service_name", "trace_id", "span_id", "received_at", "attributes.otel_audit.*")
MAX_TTL_SECONDS = 86400
_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_ORIGIN = re.compile(
    r"^https?://(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+|\*\.[A-Za-z0-9.-]+)(?::(?:[0-9]{1,5}|\*))?$"
)
_FIELD = re.compile(r"^(?:[a-z_]+|attributes\.[A-Za-z0-9_.-]+\*?)$")


class Viewer(BaseModel):
    """The tenant-facing viewer (SPEC section 9, docs/VIEWER.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secrets: tuple[str, ...] = Field(
        default=(),
        description="HMAC-SHA256 keys of viewer tokens (32+ characters each). The first signs, every one "
        "verifies: to rotate, put a new secret first, keep the old one until its tokens expire, then "
        "drop it. No secrets: viewer tokens are off.",
    )
    not_before: dict[str, dt.datetime] = Field(
        default_factory=dict,
        description="Revocation: tenant id → time; that tenant's viewer tokens issued before it are "
        "refused ('*' applies to every tenant).",
    )
    frame_ancestors: tuple[str, ...] = Field(
        default=(),
        description="Origins (https://app.example.com, http://127.0.0.1:8000, https://*.example.com, http://127.0.0.1:*) "
        "allowed to frame GET /viewer: its CSP frame-ancestors. None: 'none' (no page may frame it).",
    )
    default_ttl_seconds: int = Field(
        default=900, ge=60, le=MAX_TTL_SECONDS, description="lifetime of a token when none is asked for"
    )
    title: str = Field(default="Audit log", max_length=80, description="the page's title and heading")
    logo_url: str | None = Field(
        default=None, description="an https (or loopback http) image shown beside it"
    )
    accent_color: str | None = Field(default=None, description="the accent colour, #rgb or #rrggbb")
    hidden_fields: tuple[str, ...] = Field(
        default=DEFAULT_HIDDEN,
        description="Event fields left out of every answer to a viewer token: column names, "
        "'attributes.<key>' or 'attributes.<prefix>*'.",
    )
    base_url: str | None = Field(
        default=None,
        description="The receiver's public admin URL (https://audit.example.com) used in the 'url' of "
        "minted tokens; default: the URL the minting request came to.",
    )

    @field_validator("secrets")
    @classmethod
    def _long_secrets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(len(s) < 32 for s in value):
            raise ValueError("each viewer secret needs at least 32 characters (`otel-audit init` makes them)")
        return value

    @field_validator("frame_ancestors")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin != "'self'" and not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port]) or 'self'")
        return value

    @field_validator("accent_color")
    @classmethod
    def _colour(cls, value: str | None) -> str | None:
        if value is not None and not _COLOUR.match(value):
            raise ValueError(f"{value!r} is not a colour: #rgb or #rrggbb")
        return value

    @field_validator("logo_url", "base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError(f"{value!r}: an https URL (http only for loopback)")
        if not parts.hostname or any(c in value for c in "\"'()<> \\;"):
            raise ValueError(f"{value!r} is not a plain URL")
        return value

    @field_validator("hidden_fields")
    @classmethod
    def _fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not _FIELD.match(name):
                raise ValueError(f"{name!r}: a column name or attributes.<key>[*]")
        protected = {"id", "tenant_id", "created_at"} & set(value)
        if protected:
            raise ValueError(f"{sorted(protected)} cannot be hidden (the viewer needs them)")
        return value

    @field_validator("not_before")
    @classmethod
    def _aware(cls, value: dict[str, dt.datetime]) -> dict[str, dt.datetime]:
        return {k: v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc) for k, v in value.items()}

    @property
    def enabled(self) -> bool:
        return bool(self.secrets)
