"""A viewer token as an admin-API caller: an :class:`Access` limited to one tenant (and one actor
when the token names one), never admin, exporting only when the token allows; and what that
scope does to filters and answers."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from receiver.admin.access import Access
from receiver.filters import EventFilter, FilterError, Match
from receiver.store.sql import MATCH_COLUMNS
from receiver.viewer.config import Viewer
from receiver.viewer.tokens import TokenError, ViewerClaims, ViewerTokens

ROLE = "viewer"


def tokens_of(config: Viewer | None) -> ViewerTokens:
    config = config or Viewer()
    return ViewerTokens(config.secrets, config.not_before)


def access_of(claims: ViewerClaims, config: Viewer | None) -> Access:
    hidden = (config or Viewer()).hidden_fields
    # the viewer's identity in the audit trail: the user the vendor minted it for, else the tenant
    name = f"viewer:{claims.actor}" if claims.actor else f"viewer:{claims.tenant}"
    return Access(
        name=name,
        role=ROLE,
        tenants=(claims.tenant,),
        actor=claims.actor,
        can_export=claims.can_export,
        hidden_fields=hidden,
        token_id=claims.token_id,
    )


def check(token: str, config: Viewer | None) -> Access:
    """The token's access; :class:`TokenError` (the 401's reason) when it cannot be used."""
    return access_of(tokens_of(config).verify(token), config)


def viewer_access(token: str, config: Viewer | None) -> Access | None:
    try:
        return check(token, config)
    except TokenError:
        return None


def _admits(match: Match, actor: str) -> bool:
    """Whether the ``user`` filter a viewer gave lets its own actor through."""

    def hit(kind: str, value: str) -> bool:
        return actor.startswith(value) if kind == "prefix" else kind == "equal" and actor == value

    if any(hit(t.kind, t.value) for t in match.excluded):
        return False
    return not match.included or any(hit(t.kind, t.value) for t in match.included)


def hide_from_search(flt: EventFilter, access: Access) -> EventFilter:
    """A viewer's filter may not read what it may not see: a match filter on a hidden column is
    refused (its answer would reveal the values); ``q`` and the exports skip the hidden fields."""
    if not access.hidden_fields:
        return flt
    for name, column in MATCH_COLUMNS:
        if getattr(flt, name) is not None and column in access.hidden_fields:
            raise FilterError(f"{name}: {column} is hidden from viewer tokens, so it cannot be filtered on")
    return replace(flt, hidden=access.hidden_fields)


def force_actor(flt: EventFilter, access: Access) -> EventFilter:
    """An actor-bound viewer sees only its actor's events, whatever ``user`` filter it sends:
    the filter becomes the actor, or nothing when the filter it sent excludes the actor."""
    if access.actor is None:
        return flt
    actor = access.actor
    if flt.user is None or _admits(flt.user, actor):
        return replace(flt, user=Match((actor,)))
    return replace(flt, user=Match((actor, "!" + actor)))  # = actor AND NOT actor: no rows


def redact(row: Mapping[str, Any], hidden: tuple[str, ...]) -> dict[str, Any]:
    """The row without the hidden fields (columns, ``attributes.<key>``, ``attributes.<prefix>*``)."""
    out = {k: v for k, v in row.items() if k not in hidden}
    patterns = [h[len("attributes.") :] for h in hidden if h.startswith("attributes.")]
    if patterns and isinstance(out.get("attributes"), dict):
        out["attributes"] = {
            k: v for k, v in out["attributes"].items() if not any(fnmatch.fnmatchcase(k, p) for p in patterns)
        }
    return out


def shown(row: dict[str, Any], access: Access) -> dict[str, Any]:
    """The row as this access may see it (a viewer token's hidden fields left out)."""
    return redact(row, access.hidden_fields) if access.hidden_fields else row


def shown_stats(report: dict[str, Any], access: Access) -> dict[str, Any]:
    """A statistics answer without the facets of hidden fields."""
    if not access.hidden_fields or not isinstance(report.get("facets"), dict):
        return report
    facets = {k: v for k, v in report["facets"].items() if k not in access.hidden_fields}
    return {**report, "facets": facets}
