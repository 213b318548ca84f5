"""Admin credentials → what the caller may see (SPEC sections 4 and 5).

A token only ever sees its own tenants' events. With no admin tokens configured the API is
open, and ``serve`` allows that only on a loopback admin address.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from receiver.config import AdminToken
from receiver.pipeline.auth import bearer_token
from receiver.viewer.tokens import is_viewer_token

if TYPE_CHECKING:
    from receiver.viewer.config import Viewer as ViewerConfig


@dataclass(frozen=True, slots=True)
class Access:
    name: str
    role: str
    #: None: every tenant
    tenants: tuple[str, ...] | None
    #: a viewer token's limits (receiver/viewer/): only this user's events, export or not,
    #: fields left out of answers, the token's id for the audit trail
    actor: str | None = None
    can_export: bool = True
    hidden_fields: tuple[str, ...] = ()
    token_id: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_viewer(self) -> bool:
        return self.role == "viewer"


OPEN_ACCESS = Access(name="local-admin", role="admin", tenants=None)


class AdminAuthenticator:
    def __init__(self, tokens: Iterable[AdminToken], viewer: ViewerConfig | None = None) -> None:
        self._tokens = list(tokens)
        self.viewer = viewer

    @property
    def required(self) -> bool:
        """False when no admin tokens are configured (open on a loopback address)."""
        return bool(self._tokens)

    def authenticate(self, authorization: str | None) -> Access | None:
        """The caller's access, or None for a missing or unknown token."""
        token = bearer_token(authorization)
        if is_viewer_token(token):  # before the open mode: a viewer token never becomes an admin
            from receiver.viewer.access import viewer_access

            return viewer_access(token or "", self.viewer)
        if not self._tokens:
            return OPEN_ACCESS
        if token is None:
            return None
        given = token.encode()
        found: AdminToken | None = None
        for known in self._tokens:
            if hmac.compare_digest(known.token.encode(), given):
                found = known
        if found is None:
            return None
        tenants = None if "*" in found.tenants else tuple(found.tenants)
        return Access(name=found.name or f"{found.role}-token", role=found.role, tenants=tenants)
