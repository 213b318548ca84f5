"""Stage 2: the ingest credential → the tenant it fixes (SPEC section 4).

Tokens are compared in constant time and never logged. With no tokens configured, ingest
is open (``serve`` allows that on loopback addresses only) and each event keeps its own
``audit.tenant.id``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass


class Unauthenticated(Exception):
    """Missing or unknown ingest token."""


@dataclass(frozen=True, slots=True)
class IngestIdentity:
    """Who is sending: the tenant the token fixes, or None in open (no-token) mode."""

    tenant: str | None


OPEN = IngestIdentity(tenant=None)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class IngestAuthenticator:
    def __init__(self, tokens: Iterable[tuple[str, str]]) -> None:
        self._tokens = [(token.encode(), tenant) for token, tenant in tokens]

    @property
    def open(self) -> bool:
        return not self._tokens

    def authenticate(self, authorization: str | None) -> IngestIdentity:
        if self.open:
            return OPEN
        token = bearer_token(authorization)
        if token is None:
            raise Unauthenticated("missing ingest token: send 'authorization: Bearer <token>'")
        given = token.encode()
        found: str | None = None
        for known, tenant in self._tokens:  # no early exit: time does not depend on the match
            if hmac.compare_digest(known, given):
                found = tenant
        if found is None:
            raise Unauthenticated("unknown ingest token")
        return IngestIdentity(tenant=found)
