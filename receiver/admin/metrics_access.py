"""Who may read ``/metrics`` (config ``metrics.auth``): by default only same-host peers or a
caller with a token, since the counters reveal tenants' traffic and refusals."""

from __future__ import annotations

import hmac
import ipaddress

from starlette.requests import Request

from receiver.admin.access import AdminAuthenticator
from receiver.config import MetricsAccess
from receiver.pipeline.auth import bearer_token


def _loopback_peer(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _has_token(request: Request, config: MetricsAccess, auth: AdminAuthenticator) -> bool:
    authorization = request.headers.get("authorization")
    token = bearer_token(authorization)
    if token is None:
        return False
    if config.token is not None and hmac.compare_digest(config.token.encode(), token.encode()):
        return True
    return auth.required and auth.authenticate(authorization) is not None


def metrics_allowed(request: Request, config: MetricsAccess, auth: AdminAuthenticator) -> bool:
    if config.auth == "none":
        return True
    if config.auth == "loopback" and _loopback_peer(request):
        return True
    return _has_token(request, config, auth)
