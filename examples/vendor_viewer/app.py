"""A SaaS vendor's backend that shows each signed-in customer its own audit log (docs/VIEWER.md).

OTEL_AUDIT_URL=http://127.0.0.1:8318 OTEL_AUDIT_ADMIN_TOKEN=... uvicorn app:app --port 8400
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

AUDIT_URL = os.environ.get("OTEL_AUDIT_URL", "http://127.0.0.1:8318")
ADMIN_TOKEN = os.environ.get("OTEL_AUDIT_ADMIN_TOKEN")  # an admin token scoped to your tenants
PAGE = (Path(__file__).parent / "page.html").read_text()
app = FastAPI()


def signed_in_customer(request: Request) -> dict[str, str]:
    """Your session lookup; here a cookie, defaulting to the demo's tenant."""
    return {"tenant": request.cookies.get("tenant", "acme"), "user": request.cookies.get("user", "")}


@app.get("/", response_class=HTMLResponse)
def settings_page() -> str:
    return PAGE.replace("{{AUDIT_URL}}", AUDIT_URL)


@app.post("/audit-log/token")
def audit_log_token(customer: Annotated[dict[str, str], Depends(signed_in_customer)]) -> dict[str, str]:
    body = {"tenant": customer["tenant"], "ttl_seconds": 900, "can_export": True}
    if customer["user"]:  # "my activity" only
        body["actor"] = customer["user"]
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"} if ADMIN_TOKEN else {}
    answer = httpx.post(f"{AUDIT_URL}/api/viewer-tokens", json=body, headers=headers, timeout=10)
    answer.raise_for_status()
    return {"token": answer.json()["token"]}
