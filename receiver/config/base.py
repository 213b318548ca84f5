"""Shared pieces of the configuration model: the frozen base class, defaults, address and
``${ENV}`` helpers."""

from __future__ import annotations

import ipaddress
import os
import re

from pydantic import BaseModel, ConfigDict

DEFAULT_GRPC = "127.0.0.1:4317"
DEFAULT_HTTP = "127.0.0.1:4318"
DEFAULT_ADMIN = "127.0.0.1:8318"
DEFAULT_SQL = "127.0.0.1:8123"
DEFAULT_HOT_DAYS = 90
DEFAULT_RETAIN_DAYS = 365
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says what to fix."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def split_host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


def is_loopback(address: str) -> bool:
    host, _ = split_host_port(address)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def expand_env(text: str) -> str:
    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set (used as ${{{name}}} in the config)")

    return _ENV.sub(sub, text)
