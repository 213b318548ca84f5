"""The admin UI's session cookie (issue 15 item 8) over real HTTP against a real receiver: minted
from a bearer token, HttpOnly and SameSite=Strict, scoped like its token, refused for a state change
without the custom header, never renewed by itself, and a 401 that says why (expired, revoked,
forged). Authorization-header clients are untouched."""

from __future__ import annotations

import time

import httpx
import pytest
from admin_seed import ACME_AUDITOR, ADMIN, ADMIN_TOKENS, seed
from conftest import start_receiver
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from receiver.admin.session import COOKIE, SALT, fingerprint


@pytest.fixture
def admin(store):
    receiver = start_receiver(store, admin_tokens=ADMIN_TOKENS)
    seeded = seed(f"127.0.0.1:{receiver.grpc_port}")
    yield receiver, seeded, f"http://127.0.0.1:{receiver.admin_port}"
    receiver.stop_listeners()


def sign_in(base: str, token: str) -> httpx.Response:
    return httpx.post(base + "/api/session", headers={"authorization": f"Bearer {token}"}, timeout=30)


def with_cookie(base: str, value: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"cookie": f"{COOKIE}={value}"}, timeout=30)


def test_sign_in_sets_an_httponly_strict_cookie_that_acts_as_its_token(admin):
    _, seeded, base = admin
    answer = sign_in(base, ACME_AUDITOR)
    assert answer.status_code == 200 and answer.json()["name"] == "ada.auditor"
    header = answer.headers["set-cookie"]
    attributes = {part.strip().lower() for part in header.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert "secure" not in attributes  # plain http: a Secure cookie would never be sent back
    assert not any(a.startswith(("max-age", "expires")) for a in attributes)  # ends with the browser
    value = answer.cookies[COOKIE]
    assert ACME_AUDITOR not in value and ACME_AUDITOR not in header
    # another app's malformed cookie on the same host does not hide the session
    with httpx.Client(base_url=base, headers={"cookie": f'other="x; {COOKIE}={value}; z=1'}, timeout=30) as c:
        assert c.get("/api/me").json()["name"] == "ada.auditor"
    with with_cookie(base, value) as client:
        me = client.get("/api/me").json()
        assert (me["name"], me["tenants"]) == ("ada.auditor", ["acme"])
        events = client.get("/api/events", params={"limit": 1000}).json()["events"]
        assert {e["tenant_id"] for e in events} == {"acme"}
        assert client.get("/api/events", params={"tenant": "globex"}).status_code == 403
        # a cookie never mints a longer session for itself
        renewed = client.post("/api/session", headers={"x-requested-with": "otel-audit"})
        assert renewed.status_code == 401 and "set-cookie" not in renewed.headers


def test_a_cookie_state_change_needs_the_custom_header(admin):
    _, _, base = admin
    value = sign_in(base, ADMIN).cookies[COOKIE]
    with with_cookie(base, value) as client:
        refused = client.post("/api/export-tickets")
        assert refused.status_code == 403 and "x-requested-with" in refused.json()["error"]
        assert (
            client.post("/api/export-tickets", headers={"x-requested-with": "otel-audit"}).status_code == 200
        )


def test_bad_tokens_and_header_clients(admin):
    _, _, base = admin
    assert sign_in(base, "not-a-known-token-000000").status_code == 401
    assert httpx.post(base + "/api/session", timeout=30).status_code == 401
    # an Authorization header wins over any cookie, valid or not
    with httpx.Client(
        base_url=base,
        headers={"authorization": f"Bearer {ACME_AUDITOR}", "cookie": f"{COOKIE}=garbage"},
        timeout=30,
    ) as client:
        assert client.get("/api/me").json()["name"] == "ada.auditor"


def test_sign_out_clears_the_cookie(admin):
    _, _, base = admin
    value = sign_in(base, ACME_AUDITOR).cookies[COOKIE]
    with with_cookie(base, value) as client:
        out = client.delete("/api/session", headers={"x-requested-with": "otel-audit"})
    assert out.status_code == 204
    assert f'{COOKIE}=""' in out.headers["set-cookie"] and "max-age=0" in out.headers["set-cookie"].lower()


class _Yesterday(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 86400


def test_expired_revoked_and_forged_sessions_say_why(admin, store):
    receiver, _, base = admin
    expired = URLSafeTimedSerializer(ACME_AUDITOR, salt=SALT, signer=_Yesterday).dumps(
        {"fp": fingerprint(ACME_AUDITOR)}
    )
    forged = URLSafeTimedSerializer("a-guess-at-the-token-000", salt=SALT).dumps(
        {"fp": fingerprint(ACME_AUDITOR)}
    )
    valid = sign_in(base, ACME_AUDITOR).cookies[COOKIE]
    for value, reason, words in ((expired, "expired", "expired"), (forged, "invalid", "not valid")):
        with with_cookie(base, value) as client:
            answer = client.get("/api/events")
        assert answer.status_code == 401 and answer.json()["signed_out"] == reason
        assert words in answer.json()["error"]
        assert f'{COOKIE}=""' in answer.headers["set-cookie"]
    # the UI shell itself still loads (it then shows the sign-in page with the reason)
    with with_cookie(base, expired) as client:
        assert client.get("/").status_code == 200
    receiver.stop_listeners()

    # the same store served with the acme auditor's token removed from the config: revoked
    others = [t for t in ADMIN_TOKENS if t["token"] != ACME_AUDITOR]
    restarted = start_receiver(store, admin_tokens=others)
    try:
        with with_cookie(f"http://127.0.0.1:{restarted.admin_port}", valid) as client:
            answer = client.get("/api/me")
        assert answer.status_code == 401 and answer.json()["signed_out"] == "revoked"
        assert "revoked" in answer.json()["error"]
    finally:
        restarted.stop_listeners()


def test_secure_cookies_setting(store):
    receiver = start_receiver(
        store, admin_tokens=ADMIN_TOKENS, admin={"secure_cookies": True, "session_ttl_seconds": 600}
    )
    try:
        answer = sign_in(f"http://127.0.0.1:{receiver.admin_port}", ADMIN)
        assert "secure" in {p.strip().lower() for p in answer.headers["set-cookie"].split(";")}
        expires = answer.json()["expires_at"]
        assert time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ")
    finally:
        receiver.stop_listeners()
