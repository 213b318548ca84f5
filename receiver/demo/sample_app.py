"""The demo "documents service": a small Starlette app instrumented with otel_audit.

Users alice (acme, editor), dave (acme), bob (globex, editor), erin (globex) and carol (admin of
both tenants). The actor and tenant come from the ``x-demo-user`` / ``x-demo-tenant`` headers (as
an authenticating gateway would set them), the session from ``x-demo-session``. Every request to
an audited route produces exactly one audit event:

=================================  ==========================================================
``POST /login``                    ``login_success`` / ``login_failure`` (password check)
``POST /logout``                   ``logout``
``POST /documents``                ``created`` (editors, admins)
``GET /documents/{id}``            ``audit.document.read`` by ``AuditMiddleware`` (a rule)
``PUT /documents/{id}``            ``updated`` with the diff; ``subject.ssn`` is redacted
``DELETE /documents/{id}``         ``deleted`` (admins)
``POST /roles/{user}/grant|revoke``  ``permission_granted`` / ``permission_revoked`` (admins)
=================================  ==========================================================

Refusals are recorded too (outcome ``denied`` for 401/403, ``failure`` for 404).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry._logs import LoggerProvider
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import otel_audit
from otel_audit import attributes as attr
from otel_audit.asgi import AuditMiddleware, header_resolver
from otel_audit.routes import SensitiveRoute

USER_HEADER = "x-demo-user"
TENANT_HEADER = "x-demo-tenant"
SESSION_HEADER = "x-demo-session"
TENANTS = ("acme", "globex")
PASSWORDS = {
    "alice": "wonderland",
    "dave": "letmein",
    "bob": "builder",
    "erin": "hunter2",
    "carol": "admin-pass",
}
ROLE_PERMISSIONS = {"viewer": "documents:read", "editor": "documents:write", "admin": "documents:*"}


def _seed_roles() -> dict[tuple[str, str], set[str]]:
    return {
        ("acme", "alice"): {"viewer", "editor"},
        ("acme", "dave"): {"viewer"},
        ("acme", "carol"): {"viewer", "editor", "admin"},
        ("globex", "bob"): {"viewer", "editor"},
        ("globex", "erin"): {"viewer"},
        ("globex", "carol"): {"viewer", "editor", "admin"},
    }


def _seed_documents(tenant: str) -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for n in range(1, 7):
        docs[str(n)] = {
            "title": f"{tenant} document {n}",
            "classification": "confidential" if n % 3 == 0 else "internal",
            "subject": {"name": f"Person {n}", "ssn": f"078-05-112{n}"},
            "version": 1,
        }
    return docs


@dataclass
class DemoState:
    """Everything the app knows; a fresh one per ``build_app()``."""

    roles: dict[tuple[str, str], set[str]] = field(default_factory=_seed_roles)
    documents: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {t: _seed_documents(t) for t in TENANTS}
    )
    sessions: dict[str, str] = field(default_factory=dict)
    next_id: int = 100


def _who(request: Request) -> tuple[str, str]:
    return request.headers.get(USER_HEADER, ""), request.headers.get(TENANT_HEADER, "")


def _roles(state: DemoState, request: Request) -> set[str]:
    user, tenant = _who(request)
    return state.roles.get((tenant, user), set())


def _refusal(request: Request, state: DemoState, need: str) -> int | None:
    """401 without a user, 403 without the role ``need`` in the tenant, else ``None``."""
    user, _tenant = _who(request)
    if not user:
        return 401
    return None if need in _roles(state, request) else 403


def _outcome(status: int) -> str:
    return "denied" if status in (401, 403) else "failure"


def _make_routes(state: DemoState) -> list[Route]:
    async def login(request: Request) -> Response:
        body = await request.json()
        user, password = str(body.get("username", "")), str(body.get("password", ""))
        tenant = request.headers.get(TENANT_HEADER, "")
        if user not in PASSWORDS:
            otel_audit.login_failure("", reason="unknown user", attributes={"login.username": user})
            return JSONResponse({"error": "invalid credentials"}, status_code=401)
        if PASSWORDS[user] != password:
            otel_audit.login_failure(user, reason="bad password")
            return JSONResponse({"error": "invalid credentials"}, status_code=401)
        if (tenant, user) not in state.roles:
            otel_audit.login_failure(user, reason=f"no access to tenant {tenant}", outcome="denied")
            return JSONResponse({"error": "no access to this tenant"}, status_code=403)
        session = uuid.uuid4().hex
        state.sessions[session] = user
        otel_audit.login_success(user, session_id=session)
        return JSONResponse({"session": session})

    async def logout(request: Request) -> Response:
        state.sessions.pop(request.headers.get(SESSION_HEADER, ""), None)
        otel_audit.logout()
        return Response(status_code=204)

    async def create_document(request: Request) -> Response:
        _user, tenant = _who(request)
        refused = _refusal(request, state, "editor")
        if refused is not None:
            otel_audit.record(action="create", resource_type="document", outcome=_outcome(refused))
            return Response(status_code=refused)
        body = await request.json()
        doc_id, state.next_id = str(state.next_id), state.next_id + 1
        doc = {"title": str(body.get("title", "untitled")), "classification": "internal", "version": 1}
        if isinstance(body.get("subject"), dict):
            doc["subject"] = body["subject"]
        state.documents.setdefault(tenant, {})[doc_id] = doc
        otel_audit.created("document", doc_id, after=doc)
        return JSONResponse({"id": doc_id, **doc}, status_code=201)

    async def read_document(request: Request) -> Response:
        # Audited by the AuditMiddleware rule (outcome from the status), not here.
        _user, tenant = _who(request)
        doc = state.documents.get(tenant, {}).get(request.path_params["id"])
        need = "editor" if doc is not None and doc["classification"] == "confidential" else "viewer"
        refused = _refusal(request, state, need)
        if refused is not None:
            return Response(status_code=refused)
        if doc is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(doc)

    async def update_document(request: Request) -> Response:
        _user, tenant = _who(request)
        doc_id = request.path_params["id"]
        doc = state.documents.get(tenant, {}).get(doc_id)
        status = _refusal(request, state, "editor") or (404 if doc is None else None)
        if status is not None or doc is None:
            status = status or 404
            otel_audit.record(
                action="update", resource_type="document", resource_id=doc_id, outcome=_outcome(status)
            )
            return Response(status_code=status)
        before = copy.deepcopy(doc)
        changes = await request.json()
        for key, value in changes.items():
            if key in ("title", "classification"):
                doc[key] = value
            elif key == "subject" and isinstance(value, dict):
                doc["subject"] = {**doc.get("subject", {}), **value}
        doc["version"] = int(doc["version"]) + 1
        otel_audit.updated("document", doc_id, before=before, after=doc)
        return JSONResponse(doc)

    async def delete_document(request: Request) -> Response:
        _user, tenant = _who(request)
        doc_id = request.path_params["id"]
        status = _refusal(request, state, "admin") or (
            404 if doc_id not in state.documents.get(tenant, {}) else None
        )
        if status is not None:
            otel_audit.record(
                action="delete", resource_type="document", resource_id=doc_id, outcome=_outcome(status)
            )
            return Response(status_code=status)
        before = state.documents[tenant].pop(doc_id)
        otel_audit.deleted("document", doc_id, before=before)
        return Response(status_code=204)

    def role_change(action: str) -> Callable[[Request], Awaitable[Response]]:
        async def change_role(request: Request) -> Response:
            _user, tenant = _who(request)
            grantee = request.path_params["user"]
            role = str((await request.json()).get("role", "editor"))
            status = _refusal(request, state, "admin") or (404 if role not in ROLE_PERMISSIONS else None)
            if status is not None:
                otel_audit.record(
                    action=action,
                    resource_type="role",
                    resource_id=role,
                    outcome=_outcome(status),
                    attributes={attr.PERMISSION: ROLE_PERMISSIONS.get(role, ""), attr.GRANTEE: grantee},
                )
                return Response(status_code=status)
            roles = state.roles.setdefault((tenant, grantee), set())
            if action == "grant":
                roles.add(role)
                otel_audit.permission_granted(
                    "role", role, permission=ROLE_PERMISSIONS[role], grantee=grantee
                )
            else:
                roles.discard(role)
                otel_audit.permission_revoked(
                    "role", role, permission=ROLE_PERMISSIONS[role], grantee=grantee
                )
            return JSONResponse({"user": grantee, "roles": sorted(roles)})

        return change_role

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return [
        Route("/healthz", healthz),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/documents", create_document, methods=["POST"]),
        Route("/documents/{id}", read_document, methods=["GET"]),
        Route("/documents/{id}", update_document, methods=["PUT"]),
        Route("/documents/{id}", delete_document, methods=["DELETE"]),
        Route("/roles/{user}/grant", role_change("grant"), methods=["POST"]),
        Route("/roles/{user}/revoke", role_change("revoke"), methods=["POST"]),
    ]


def build_app(
    endpoint: str | None = None,
    token: str | None = None,
    service_name: str = "demo-docs",
    *,
    protocol: str | None = None,
    logger_provider: LoggerProvider | None = None,
    spool_dir: str | None = None,
) -> AuditMiddleware:
    """Configure otel_audit (OTLP to ``endpoint``, or through ``logger_provider``) and build the app."""
    if logger_provider is not None:
        otel_audit.configure(logger_provider=logger_provider, service_name=service_name)
    else:
        otel_audit.configure(
            endpoint=endpoint, token=token, service_name=service_name, protocol=protocol, spool_dir=spool_dir
        )
    app = Starlette(routes=_make_routes(DemoState()))
    return AuditMiddleware(
        app,
        user_resolver=header_resolver(USER_HEADER),
        tenant_resolver=header_resolver(TENANT_HEADER),
        session_resolver=header_resolver(SESSION_HEADER),
        trusted_proxies=["127.0.0.0/8"],
        sensitive=[SensitiveRoute(methods={"GET"}, path="/documents/{id}", resource_type="document")],
    )
