"""The README's quickstart app: a small FastAPI-style (Starlette) patient-records API, audited.

Run it with the variables ``otel-audit init`` wrote (``. audit/app.env``), then call it:

    python examples/quickstart_app.py
    curl -s -H 'authorization: Bearer alice' http://127.0.0.1:8000/patients/42

- ``otel_audit.configure()`` reads OTEL_AUDIT_ENDPOINT / _TOKEN / _SERVICE_NAME from the environment.
- ``AuditMiddleware`` gives every request an audit context and records one ``read`` event per
  ``GET /patients/{id}`` (a sensitive route), after the response, with the outcome from the status.
- ``current_user()`` stands in for your authentication: once it knows the user it calls
  ``otel_audit.set_actor()``, so that event and every ``record()`` call carry the user id.
- ``PUT /patients/{id}`` records an ``update`` with the before/after diff (``ssn`` is redacted).
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import otel_audit
from otel_audit.asgi import AuditMiddleware

PATIENTS: dict[str, dict[str, str]] = {"42": {"name": "Ada", "ward": "A", "ssn": "078-05-1120"}}


def current_user(request: Request) -> str:
    """Your authentication goes here (a session, a JWT ...); this demo takes `Bearer <user>`."""
    scheme, _, user = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not user:
        raise HTTPException(401, "sign in: send authorization: Bearer <user>")
    otel_audit.set_actor(user_id=user)  # known only now, after the middleware started the request
    return user


async def read_patient(request: Request) -> JSONResponse:
    current_user(request)
    patient = PATIENTS.get(request.path_params["id"])
    if patient is None:
        raise HTTPException(404, "no such patient")
    return JSONResponse({k: v for k, v in patient.items() if k != "ssn"})


async def update_patient(request: Request) -> JSONResponse:
    current_user(request)
    patient_id = request.path_params["id"]
    before = dict(PATIENTS.get(patient_id) or {})
    after = {**before, **(await request.json())}
    PATIENTS[patient_id] = after
    otel_audit.updated("patient", patient_id, before=before, after=after, reason="chart correction")
    return JSONResponse({k: v for k, v in after.items() if k != "ssn"})


def build_app() -> AuditMiddleware:
    otel_audit.configure()  # endpoint, token and service name from OTEL_AUDIT_* (see app.env)
    app = Starlette(
        routes=[
            Route("/patients/{id}", read_patient, methods=["GET"]),
            Route("/patients/{id}", update_patient, methods=["PUT"]),
        ]
    )
    return AuditMiddleware(app, sensitive=["GET /patients/{id}=patient"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    args = parser.parse_args()
    # proxy_headers=False: the client address is the peer's; behind a proxy, let
    # AuditMiddleware(trusted_proxies=[...]) read X-Forwarded-For instead of uvicorn
    uvicorn.run(build_app(), host="127.0.0.1", port=args.port, proxy_headers=False)


if __name__ == "__main__":
    main()
