"""Demo traffic against the sample documents app: what a day of a small SaaS looks like in audit terms.

Per round and tenant (acme, globex): logins, failed logins (bad password, unknown user), document
reads (some missing, some forbidden, some anonymous), edits (some touching the redacted ``ssn``),
creates, deletes (admin, and refused non-admins), role grants/revokes and a logout. Every request
produces exactly one audit event, so the summary says what the receiver should have stored.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from otel_audit.routes import outcome_for_status
from receiver.demo.sample_app import PASSWORDS, SESSION_HEADER, TENANT_HEADER, TENANTS, USER_HEADER

#: A base URL (``http://127.0.0.1:8000``) or the ASGI app itself.
Target = Any
TENANT_USERS = {"acme": ("alice", "dave"), "globex": ("bob", "erin")}
ADMIN = "carol"


def _outcome(action: str, status: int) -> str:
    """The outcome the app records for a response: login failures are ``failure``, not ``denied``."""
    if action == "login":
        return "success" if status == 200 else ("denied" if status == 403 else "failure")
    return outcome_for_status(status)


@dataclass
class _Session:
    """One tenant's client plus the tally of the events its requests caused."""

    http: httpx.AsyncClient
    tenant: str
    rng: random.Random
    tally: Counter[tuple[str, str]] = field(default_factory=Counter)
    doc_ids: list[str] = field(default_factory=lambda: [str(n) for n in range(1, 7)])

    async def call(
        self, action: str, method: str, path: str, user: str | None, json: Any = None, session: str = ""
    ) -> httpx.Response:
        headers = {TENANT_HEADER: self.tenant, "user-agent": "otel-audit-demo/1.0"}
        if user:
            headers[USER_HEADER] = user
        if session:
            headers[SESSION_HEADER] = session
        response = await self.http.request(method, path, headers=headers, json=json)
        self.tally[(action, _outcome(action, response.status_code))] += 1
        return response

    async def round(self, n: int) -> None:
        rng, editor_viewer = self.rng, TENANT_USERS[self.tenant]
        user = rng.choice((*editor_viewer, ADMIN))
        login = await self.call(
            "login", "POST", "/login", None, {"username": user, "password": PASSWORDS[user]}
        )
        session = login.json().get("session", "") if login.status_code == 200 else ""
        victim = rng.choice(editor_viewer)
        await self.call("login", "POST", "/login", None, {"username": victim, "password": "guess"})
        if rng.random() < 0.5:
            await self.call("login", "POST", "/login", None, {"username": "mallory", "password": "x"})

        for _ in range(3):
            doc = rng.choice([*self.doc_ids, "999"])
            reader = rng.choice((*editor_viewer, ADMIN, None))
            await self.call("read", "GET", f"/documents/{doc}", reader, session=session)

        doc = rng.choice(self.doc_ids) if self.doc_ids else "1"
        edit: dict[str, Any] = {"title": f"{self.tenant} document {doc} rev {n}"}
        if rng.random() < 0.5:
            edit["subject"] = {"ssn": f"078-05-{rng.randint(1000, 9999)}"}
        await self.call("update", "PUT", f"/documents/{doc}", rng.choice(editor_viewer), edit, session)

        created = await self.call(
            "create", "POST", "/documents", editor_viewer[0], {"title": f"memo {n}"}, session
        )
        if created.status_code == 201:
            self.doc_ids.append(str(created.json()["id"]))
        doomed = self.doc_ids[-1] if self.doc_ids else "1"
        deleter = ADMIN if rng.random() < 0.7 else editor_viewer[0]
        deleted = await self.call("delete", "DELETE", f"/documents/{doomed}", deleter, session=session)
        if deleted.status_code == 204:
            self.doc_ids.remove(doomed)

        grantee = editor_viewer[1]
        granter = ADMIN if rng.random() < 0.8 else grantee
        await self.call("grant", "POST", f"/roles/{grantee}/grant", granter, {"role": "editor"}, session)
        await self.call("revoke", "POST", f"/roles/{grantee}/revoke", ADMIN, {"role": "editor"}, session)
        await self.call("logout", "POST", "/logout", user, session=session)


def _client(target: Target) -> httpx.AsyncClient:
    if isinstance(target, str):
        return httpx.AsyncClient(base_url=target.rstrip("/"), timeout=10.0)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=target), base_url="http://demo-docs", timeout=10.0
    )


async def arun_traffic(
    target: Target | Mapping[str, Target],
    n_rounds: int = 3,
    seed: int = 0,
    tenants: tuple[str, ...] = TENANTS,
) -> dict[str, Any]:
    """Drive the app; ``target`` is one URL/app for every tenant, or a mapping tenant → URL/app."""
    rng = random.Random(seed)
    targets = target if isinstance(target, Mapping) else dict.fromkeys(tenants, target)
    sessions = [_Session(_client(targets[t]), t, random.Random(rng.random())) for t in tenants]
    try:
        for n in range(n_rounds):
            for session in sessions:
                await session.round(n)
    finally:
        for session in sessions:
            await session.http.aclose()
    by_action: dict[str, dict[str, int]] = {}
    for s in sessions:
        for (action, outcome), count in sorted(s.tally.items()):
            by_action.setdefault(action, {}).setdefault(outcome, 0)
            by_action[action][outcome] += count
    by_tenant = {s.tenant: sum(s.tally.values()) for s in sessions}
    total = sum(by_tenant.values())
    return {"requests": total, "events": total, "by_action": by_action, "by_tenant": by_tenant}


def run_traffic(
    target: Target | Mapping[str, Target],
    n_rounds: int = 3,
    seed: int = 0,
    tenants: tuple[str, ...] = TENANTS,
) -> dict[str, Any]:
    """Blocking ``arun_traffic`` (do not call from inside a running event loop)."""
    return asyncio.run(arun_traffic(target, n_rounds=n_rounds, seed=seed, tenants=tenants))
