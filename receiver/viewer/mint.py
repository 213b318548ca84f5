"""Minting a viewer token: the request's checks and the answer, shared by ``POST /api/viewer-tokens``
and ``otel-audit viewer-token`` (which signs locally when no server is given)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from receiver.filters import FilterError
from receiver.viewer.config import MAX_TTL_SECONDS, Viewer
from receiver.viewer.tokens import TokenError, ViewerClaims, ViewerTokens

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class MintRequest(BaseModel):
    """SPEC section 9's JSON body."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    tenant: str = Field(min_length=1, max_length=256)
    ttl_seconds: int | None = Field(default=None, ge=1, le=MAX_TTL_SECONDS)
    actor: str | None = Field(default=None, min_length=1, max_length=256)
    can_export: bool = False

    @field_validator("actor")
    @classmethod
    def _plain_actor(cls, value: str | None) -> str | None:
        # the actor becomes a user filter: it must be a plain value, not a pattern
        if value is not None and (value.startswith("!") or value.endswith("*")):
            raise ValueError("actor: a user id, not a pattern ('!' or '*')")
        return value


def parse_request(data: Any) -> MintRequest:
    try:
        return MintRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise FilterError(f"{where}: {first['msg']}") from exc


def parse_ttl(text: str) -> int:
    """``900``, ``90s``, ``15m``, ``2h``, ``1d`` → seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise FilterError(f"ttl {text!r}: a number with s, m, h or d (15m)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def mint(config: Viewer, req: MintRequest, base_url: str) -> tuple[dict[str, Any], ViewerClaims]:
    """The answer ``{"token", "expires_at", "url"}`` and the claims; TokenError when tokens are off."""
    ttl = req.ttl_seconds or config.default_ttl_seconds
    token, claims = ViewerTokens(config.secrets, config.not_before).mint(
        req.tenant, ttl, req.actor, req.can_export
    )
    expires = dt.datetime.fromtimestamp(claims.expires_at, dt.timezone.utc)
    base = (config.base_url or base_url).rstrip("/")
    answer = {
        "token": token,
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
        "url": f"{base}/viewer#token={token}",
    }
    return answer, claims


def describe(claims: ViewerClaims) -> str:
    who = f"user {claims.actor}" if claims.actor else "all users"
    until = dt.datetime.fromtimestamp(claims.expires_at, dt.timezone.utc).isoformat()
    export = "with export" if claims.can_export else "no export"
    return f"minted a viewer token for tenant {claims.tenant} ({who}, {export}, until {until})"


__all__ = ["MintRequest", "TokenError", "describe", "mint", "parse_request", "parse_ttl"]
