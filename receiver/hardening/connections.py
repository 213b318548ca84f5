"""A uvicorn HTTP protocol with a cap on open connections (per listener and per client
address) and a deadline for a request's headers. uvicorn has neither: every accepted socket is
kept until the peer closes it, so half-sent headers from many connections exhaust the
process's file descriptors (and with them the embedded store)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("otel_audit.receiver")

_REFUSED_BODY = b'{"error": "too many connections; retry later"}'
_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_REFUSED_BODY), _REFUSED_BODY)
)


@dataclass
class ConnectionLimits:
    """Shared by the connections of one listener (all on its event loop thread: no lock)."""

    max_connections: int
    per_address: int
    header_timeout: float
    _open: int = 0
    _addresses: Counter[str] = field(default_factory=Counter)

    def admit(self, address: str) -> bool:
        if self._open >= self.max_connections or self._addresses[address] >= self.per_address:
            return False
        self._open += 1
        self._addresses[address] += 1
        return True

    def release(self, address: str) -> None:
        self._open -= 1
        self._addresses[address] -= 1
        if self._addresses[address] <= 0:
            del self._addresses[address]

    @property
    def open(self) -> int:
        return self._open


class LimitedHttpProtocol(HttpToolsProtocol):
    limits: ConnectionLimits  # set on the per-listener subclass made by protocol_for

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._address = self.client[0] if self.client else "?"
        self._admitted = self.limits.admit(self._address)
        self._header_timer: asyncio.TimerHandle | None = None
        if not self._admitted:
            transport.write(_REFUSED)
            transport.close()
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_admitted", False):
            self._admitted = False
            self.limits.release(self._address)
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        super().data_received(data)

    def on_message_begin(self) -> None:
        # a keep-alive connection's next request gets the same deadline as the first
        super().on_message_begin()
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.limits.header_timeout, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol_for(limits: ConnectionLimits) -> type[LimitedHttpProtocol]:
    """A protocol class bound to one listener's limits (uvicorn's ``http=`` takes a class)."""
    return type("LimitedHttpProtocol", (LimitedHttpProtocol,), {"limits": limits})


def uvicorn_kwargs(limits: ConnectionLimits | None) -> dict[str, Any]:
    return {} if limits is None else {"http": protocol_for(limits)}
