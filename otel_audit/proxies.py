"""Client address resolution behind reverse proxies.

``X-Forwarded-For`` is client-controlled, so it is honoured only when the direct peer is a trusted
proxy. Then the list is walked from the right (the entries our own proxies appended) and the first
address that is not a trusted proxy is the client. Trusted proxies are given as CIDRs or addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def strip_port(value: str) -> str:
    """``1.2.3.4:80`` → ``1.2.3.4``, ``[::1]:80`` → ``::1``; anything else unchanged (trimmed)."""
    value = value.strip().strip('"')
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


@lru_cache(maxsize=4096)
def parse_address(value: str) -> Address | None:
    """The IP address in ``value`` (port stripped, IPv4-mapped IPv6 unwrapped), or ``None``."""
    try:
        address = ipaddress.ip_address(strip_port(value))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class TrustedProxies:
    """The networks whose ``X-Forwarded-For`` we believe."""

    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, cidrs: Iterable[str] | str) -> TrustedProxies:
        """From CIDRs or single addresses (an iterable, or one comma-separated string)."""
        items = cidrs.split(",") if isinstance(cidrs, str) else cidrs
        return cls(tuple(ipaddress.ip_network(c.strip(), strict=False) for c in items if c.strip()))

    def trusts(self, value: str) -> bool:
        address = parse_address(value)
        return address is not None and any(address in network for network in self.networks)

    def client_ip(self, peer: str | None, forwarded_for: Iterable[str] = ()) -> str | None:
        """The client address for a request from ``peer`` carrying these X-Forwarded-For values."""
        if peer is None or not self.networks or not self.trusts(peer):
            return peer
        chain = [strip_port(hop) for header in forwarded_for for hop in header.split(",") if hop.strip()]
        for hop in reversed(chain):
            if not self.trusts(hop):
                return hop
        # Every hop is one of our proxies: the left-most is the farthest we know of.
        return chain[0] if chain else peer
