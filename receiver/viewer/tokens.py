"""Viewer tokens: signed, not stored, verifiable by every receiver sharing the config.

``oav1.<claims>.<mac>``: ``claims`` is base64url JSON ``{"ten", "act", "exp", "iat", "jti", "x"}``
(tenant, optional actor, expiry and issue time in Unix seconds, a random token id, the export
flag); ``mac`` is base64url HMAC-SHA256 of ``oav1.<claims>`` under the first configured secret.
Every configured secret verifies (rotation); a tenant's ``not_before`` refuses older tokens
(revocation)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets as random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PREFIX = "oav1."
MAX_TOKEN_CHARS = 4096


class TokenError(Exception):
    """A viewer token that cannot be used; the message is the 401's reason."""


@dataclass(frozen=True, slots=True)
class ViewerClaims:
    tenant: str
    actor: str | None
    can_export: bool
    expires_at: int
    issued_at: int
    token_id: str

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "ten": self.tenant,
            "exp": self.expires_at,
            "iat": self.issued_at,
            "jti": self.token_id,
            "x": self.can_export,
        }
        if self.actor:
            out["act"] = self.actor
        return out

    @classmethod
    def from_json(cls, data: object) -> ViewerClaims:
        if not isinstance(data, dict):
            raise TokenError("viewer token: malformed claims")
        try:
            tenant, exp, iat, jti = data["ten"], data["exp"], data["iat"], data["jti"]
        except KeyError as exc:
            raise TokenError(f"viewer token: claim {exc.args[0]!r} missing") from exc
        actor, can_export = data.get("act"), data.get("x", False)
        if not (
            isinstance(tenant, str)
            and tenant
            and isinstance(exp, int)
            and isinstance(iat, int)
            and isinstance(jti, str)
            and (actor is None or isinstance(actor, str))
            and isinstance(can_export, bool)
        ):
            raise TokenError("viewer token: malformed claims")
        return cls(tenant, actor or None, can_export, exp, iat, jti)


def is_viewer_token(token: str | None) -> bool:
    return bool(token) and token.startswith(PREFIX)  # type: ignore[union-attr]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, signed: str) -> bytes:
    return hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()


class ViewerTokens:
    """Mints with the first secret, verifies with any; ``not_before``: tenant (or '*') → time."""

    def __init__(self, secrets: Sequence[str], not_before: Mapping[str, dt.datetime] | None = None) -> None:
        self._secrets = tuple(secrets)
        self._not_before = {k: int(v.timestamp()) for k, v in (not_before or {}).items()}

    @property
    def enabled(self) -> bool:
        return bool(self._secrets)

    def mint(
        self,
        tenant: str,
        ttl_seconds: int,
        actor: str | None = None,
        can_export: bool = False,
        now: float | None = None,
    ) -> tuple[str, ViewerClaims]:
        if not self._secrets:
            raise TokenError("viewer tokens are off: set viewer.secrets in the config")
        issued = int(time.time() if now is None else now)
        claims = ViewerClaims(tenant, actor, can_export, issued + ttl_seconds, issued, random.token_hex(8))
        body = _b64(json.dumps(claims.to_json(), separators=(",", ":"), sort_keys=True).encode())
        signed = PREFIX + body
        return f"{signed}.{_b64(_mac(self._secrets[0], signed))}", claims

    def verify(self, token: str, now: float | None = None) -> ViewerClaims:
        """The token's claims; :class:`TokenError` for a bad, expired or revoked token."""
        if not self._secrets:
            raise TokenError("viewer tokens are not accepted by this receiver (no viewer.secrets)")
        if len(token) > MAX_TOKEN_CHARS or not token.startswith(PREFIX) or token.count(".") != 2:
            raise TokenError("viewer token: malformed")
        signed, _, mac_text = token.rpartition(".")
        try:
            given = _unb64(mac_text)
        except (binascii.Error, ValueError) as exc:
            raise TokenError("viewer token: malformed signature") from exc
        # every secret is tried (no early exit), so timing does not tell which one matched
        ok = False
        for secret in self._secrets:
            ok |= hmac.compare_digest(_mac(secret, signed), given)
        if not ok:
            raise TokenError("viewer token: bad signature (tampered, or signed with another key)")
        try:
            claims = ViewerClaims.from_json(json.loads(_unb64(signed[len(PREFIX) :])))
        except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise TokenError("viewer token: malformed claims") from exc
        now_s = time.time() if now is None else now
        if now_s >= claims.expires_at:
            raise TokenError("viewer token: expired")
        cutoff = max(self._not_before.get(claims.tenant, 0), self._not_before.get("*", 0))
        if claims.issued_at < cutoff:
            raise TokenError("viewer token: revoked (issued before the tenant's viewer.not_before)")
        return claims
