"""Check that every listen address is free before anything else starts (SPEC section 13):
a second ``serve`` must fail at once, naming the address, and never half-open the store."""

from __future__ import annotations

import errno
import socket

from receiver.config import split_host_port


class AddressInUse(OSError):
    """A listen address is taken (or cannot be bound); the message names it."""


def probe(listeners: dict[str, str]) -> None:
    """Bind (without SO_REUSEPORT, so a port another process shares is refused too) and
    release each ``what → host:port``; port 0 (any free port) is skipped."""
    for what, address in listeners.items():
        host, port = split_host_port(address)
        if port == 0:
            continue
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise AddressInUse(f"cannot listen for {what} on {address}: {exc.strerror}") from exc
        family, kind, proto, _, sockaddr = infos[0]
        with socket.socket(family, kind, proto) as sock:
            # as the real listeners do: a port in TIME_WAIT is free, one with a listener is not
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(sockaddr)
                sock.listen(1)
            except OSError as exc:
                reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
                raise AddressInUse(f"cannot listen for {what} on {address}: {reason}") from exc
