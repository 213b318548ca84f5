"""Browser-facing request checks of the admin listener, in every mode (open or with tokens).

* ``Host`` must name this listener (400 otherwise): a DNS-rebinding page whose name resolves to
  127.0.0.1 sends its own name, so it cannot read the open, loopback-only API.
* A state change (any method but GET/HEAD/OPTIONS) must come from this origin: ``Origin`` when
  sent must be this host, ``Sec-Fetch-Site`` when sent must be ``same-origin`` or ``none`` (403).
  Clients that send neither (curl, httpx, the CLI) are not browsers and are not affected.
* A state change with a body must say ``Content-Type: application/json`` (415): a cross-site
  ``text/plain`` form post is a "simple" request that browsers send without asking first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from receiver.config import split_host_port

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
WILDCARD_LISTEN = frozenset({"0.0.0.0", "::", ""})
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})


def split_host(value: str) -> tuple[str, int | None]:
    """``Host`` header value → (lower-case name without brackets or trailing dot, port)."""
    value = value.strip().lower()
    port: int | None = None
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif value.count(":") == 1:
        name, _, text = value.partition(":")
        port = int(text) if text.isdigit() else -1
    else:
        name = value
    return name.rstrip("."), port


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` names the listener answers to."""

    names: frozenset[str]
    suffixes: tuple[str, ...] = ()
    any_ip: bool = False
    any_host: bool = False

    @classmethod
    def for_listen(cls, listen: str, allowed: Iterable[str] = ()) -> HostPolicy:
        """Loopback names and addresses, the listen host, any IP on a wildcard listener, ``allowed``."""
        host, _ = split_host_port(listen)
        host = host.lower()
        names = set(LOOPBACK_NAMES)
        if host not in WILDCARD_LISTEN:
            names.add(host)
        suffixes = []
        any_host = False
        for entry in allowed:
            entry = entry.strip().lower().rstrip(".")
            if entry == "*":
                any_host = True
            elif entry.startswith("*."):
                suffixes.append(entry[1:])
            elif entry:
                names.add(split_host(entry)[0])
        return cls(frozenset(names), tuple(suffixes), host in WILDCARD_LISTEN, any_host)

    def allows(self, name: str) -> bool:
        if self.any_host or name in self.names or name.endswith(self.suffixes):
            return True
        ip = _ip(name)
        return ip is not None and (ip.is_loopback or self.any_ip)


def _same_host(origin: str, host: str) -> bool:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    try:
        origin_port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    name, port = split_host(host)
    # a Host without a port is the scheme's default: the scheme may differ behind a TLS proxy
    return parts.hostname.rstrip(".") == name and (
        port == origin_port or (port is None and origin_port in (80, 443))
    )


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() != "0"
    return "transfer-encoding" in headers


class WebGuard:
    """Pure ASGI middleware applying the module's three checks before any route runs."""

    def __init__(self, app: ASGIApp, hosts: HostPolicy) -> None:
        self.app = app
        self.hosts = hosts

    def refusal(self, scope: Scope) -> JSONResponse | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        name, port = split_host(host)
        if not name or port == -1 or not self.hosts.allows(name):
            return JSONResponse(
                {"error": f"host {host[:100]!r} is not served here: add it to admin.allowed_hosts"},
                status_code=400,
            )
        if scope["method"] in SAFE_METHODS:
            return None
        site = headers.get("sec-fetch-site")
        if site is not None and site.lower() not in SAME_ORIGIN_FETCH:
            return JSONResponse({"error": f"cross-site request refused (Sec-Fetch-Site: {site[:40]})"}, 403)
        origin = headers.get("origin")
        if origin is not None and not _same_host(origin, host):
            return JSONResponse({"error": f"cross-origin request refused (Origin: {origin[:100]})"}, 403)
        if _has_body(headers) and not _is_json(headers.get("content-type", "")):
            return JSONResponse({"error": "send the request body as Content-Type: application/json"}, 415)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (response := self.refusal(scope)) is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
