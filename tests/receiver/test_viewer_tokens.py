"""Viewer tokens on their own (receiver/viewer/tokens.py, access.py): round trip, rotation,
revocation, expiry, tampering, malformed input, and the actor filter that is forced on searches."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from receiver.admin.access import Access
from receiver.filters import EventFilter, Match
from receiver.viewer.access import force_actor, redact
from receiver.viewer.tokens import TokenError, ViewerTokens

A, B = "a" * 32, "b" * 32
NOW = 1_800_000_000


def test_round_trip_and_rotation():
    token, claims = ViewerTokens([A]).mint("acme", 600, actor="alice", can_export=True, now=NOW)
    assert token.startswith("oav1.") and token.count(".") == 2
    assert ViewerTokens([A]).verify(token, now=NOW + 1) == claims
    assert ViewerTokens([B, A]).verify(token, now=NOW + 1) == claims  # old key kept after a new one
    with pytest.raises(TokenError, match="bad signature"):
        ViewerTokens([B]).verify(token, now=NOW + 1)  # old key dropped
    new, _ = ViewerTokens([B, A]).mint("acme", 600, now=NOW)
    with pytest.raises(TokenError, match="bad signature"):
        ViewerTokens([A]).verify(new, now=NOW + 1)  # the first secret signs


def test_expiry_is_exact():
    token, _ = ViewerTokens([A]).mint("acme", 60, now=NOW)
    assert ViewerTokens([A]).verify(token, now=NOW + 59)
    with pytest.raises(TokenError, match="expired"):
        ViewerTokens([A]).verify(token, now=NOW + 60)


def test_not_before_per_tenant_and_all():
    token, _ = ViewerTokens([A]).mint("acme", 600, now=NOW)
    other, _ = ViewerTokens([A]).mint("globex", 600, now=NOW)
    cut = dt.datetime.fromtimestamp(NOW + 1, dt.timezone.utc)
    with pytest.raises(TokenError, match="revoked"):
        ViewerTokens([A], {"acme": cut}).verify(token, now=NOW + 2)
    assert ViewerTokens([A], {"acme": cut}).verify(other, now=NOW + 2)
    with pytest.raises(TokenError, match="revoked"):
        ViewerTokens([A], {"*": cut}).verify(other, now=NOW + 2)


def _body(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def _with(token: str, claims: object) -> str:
    prefix, _, mac = token.split(".")
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{prefix}.{raw}.{mac}"


@pytest.mark.parametrize(
    "bad",
    ["", "oav1.", "oav1.a.b", "oav1.a.b.c", "oav2.x.y", "oav1." + "A" * 5000 + ".x", "oav1.e30.!!!"],
)
def test_malformed_tokens(bad):
    with pytest.raises(TokenError):
        ViewerTokens([A]).verify(bad, now=NOW)


def test_tampered_claims_fail_the_signature():
    token, _ = ViewerTokens([A]).mint("acme", 600, now=NOW)
    for change in ({"ten": "globex"}, {"x": True}, {"exp": NOW + 10**6}, {"act": "root"}):
        with pytest.raises(TokenError, match="bad signature"):
            ViewerTokens([A]).verify(_with(token, {**_body(token), **change}), now=NOW + 1)


def test_no_secrets_mints_and_verifies_nothing():
    with pytest.raises(TokenError, match="viewer.secrets"):
        ViewerTokens([]).mint("acme", 60)
    token, _ = ViewerTokens([A]).mint("acme", 60, now=NOW)
    with pytest.raises(TokenError):
        ViewerTokens([]).verify(token, now=NOW)


def viewer(actor: str | None) -> Access:
    return Access(name="viewer:x", role="viewer", tenants=("acme",), actor=actor, can_export=False)


@pytest.mark.parametrize(
    ("given", "forced"),
    [
        (None, ("alice",)),
        (("bob",), ("alice", "!alice")),
        (("bob", "alice"), ("alice",)),
        (("ali*",), ("alice",)),
        (("!alice",), ("alice", "!alice")),
        (("!al*",), ("alice", "!alice")),
        (("!bob",), ("alice",)),
        (("10.0.0.0/8",), ("alice", "!alice")),
    ],
)
def test_actor_is_forced(given, forced):
    flt = EventFilter(user=Match(given) if given else None, tenants=("acme",))
    assert force_actor(flt, viewer("alice")).user == Match(forced)
    assert force_actor(flt, viewer(None)) == flt


def test_redact_columns_and_attribute_patterns():
    row = {
        "id": "1",
        "trace_id": "t",
        "attributes": {"otel_audit.flags": "x", "app.k": "v", "app.secret": "s"},
    }
    shown = redact(row, ("trace_id", "attributes.otel_audit.*", "attributes.app.secret"))
    assert shown == {"id": "1", "attributes": {"app.k": "v"}}
    assert row["attributes"]["app.secret"] == "s"  # the input is not changed
