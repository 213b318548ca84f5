"""Emitter settings: every knob, its environment variable and its default, resolved in one place.

Each setting resolves as: the ``configure()`` argument, else its ``OTEL_AUDIT_*`` environment
variable (then, for a few, the standard ``OTEL_*`` one), else the named ``_DEFAULT_*`` constant.
``resolve_settings()`` does that once and ``AuditSettings.validate()`` checks the result.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# Environment variables read by the emitter.
ENV_ENDPOINT = "OTEL_AUDIT_ENDPOINT"
ENV_TOKEN = "OTEL_AUDIT_TOKEN"
ENV_HEADERS = "OTEL_AUDIT_HEADERS"
ENV_SERVICE_NAME = "OTEL_AUDIT_SERVICE_NAME"
ENV_INSECURE = "OTEL_AUDIT_INSECURE"
ENV_PROTOCOL = "OTEL_AUDIT_PROTOCOL"
ENV_TIMEOUT = "OTEL_AUDIT_TIMEOUT"
ENV_REDACT = "OTEL_AUDIT_REDACT"
ENV_SPOOL_DIR = "OTEL_AUDIT_SPOOL_DIR"
ENV_SPOOL_MAX_BYTES = "OTEL_AUDIT_SPOOL_MAX_BYTES"
# Standard OpenTelemetry fallbacks.
ENV_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
ENV_OTLP_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
ENV_SERVICE_NAME_STD = "OTEL_SERVICE_NAME"

PROTOCOL_GRPC = "grpc"
PROTOCOL_HTTP = "http/protobuf"
PROTOCOLS = (PROTOCOL_GRPC, PROTOCOL_HTTP)

_DEFAULT_PROTOCOL = PROTOCOL_GRPC
_DEFAULT_GRPC_ENDPOINT = "http://127.0.0.1:4317"
_DEFAULT_HTTP_ENDPOINT = "http://127.0.0.1:4318"
_HTTP_LOGS_PATH = "/v1/logs"
_DEFAULT_TIMEOUT_S = 10.0
#: the spool lives under $XDG_STATE_HOME (else ~/.local/state)/otel-audit/spool/<service>-<endpoint hash>
_DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024
SPOOL_OFF = ("off", "none", "false", "0")
#: ``None``: the SDK's resource detection decides (``OTEL_RESOURCE_ATTRIBUTES`` or ``unknown_service``).
_DEFAULT_SERVICE_NAME: str | None = None

#: Field names whose values never leave the process (matched per path segment, case-insensitive,
#: ignoring ``_`` and ``-``: ``cardNumber`` and ``card-number`` match ``card_number``).
DEFAULT_REDACT: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "authorization",
    "cookie",
    "private_key",
    "ssn",
    "social_security_number",
    "card_number",
    "credit_card",
    "cvv",
    "cvc",
    "pin",
)


class EmitterConfigError(ValueError):
    """A ``configure()`` argument or ``OTEL_AUDIT_*`` variable that cannot work; the message
    starts with ``otel_audit:`` and names the parameter (and its variable)."""


#: RFC 9110 token characters: what an HTTP (and gRPC metadata) header name may hold
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+\Z")
#: printable ASCII: what gRPC metadata values may hold (HTTP/1 allows more, but not reliably)
_PRINTABLE = re.compile(r"[\x20-\x7e]*\Z")


def _first_bad(value: str, allowed: re.Pattern[str]) -> str:
    for index, char in enumerate(value):
        if not allowed.match(char):
            return f"{char!r} (U+{ord(char):04X}) at position {index + 1}"
    return "?"


def check_token(token: str, where: str) -> None:
    """An ingest token is sent as ``authorization: Bearer <token>``: printable ASCII, no spaces."""
    if not _PRINTABLE.match(token) or " " in token:
        bad = _first_bad(token, re.compile(r"[\x21-\x7e]"))
        raise EmitterConfigError(
            f"otel_audit: {where} contains {bad}, which cannot be sent in an HTTP header: "
            "use the ingest token printed by `otel-audit init` (the value of ingest_tokens[].token)"
        )


def check_endpoint(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EmitterConfigError(
            f"otel_audit: {where} must be an http(s) URL such as http://127.0.0.1:4317, not {url!r}"
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port <= 65535:
        raise EmitterConfigError(f"otel_audit: {where} {url!r} has no valid port (1-65535)")
    if not parts.hostname:
        raise EmitterConfigError(f"otel_audit: {where} {url!r} has no host")


def check_headers(headers: Iterable[tuple[str, str]], where: str) -> None:
    for name, value in headers:
        if not _HEADER_NAME.match(name):
            raise EmitterConfigError(
                f"otel_audit: {where}: {name!r} is not a valid header name ({_first_bad(name, _HEADER_NAME)})"
            )
        if not _PRINTABLE.match(value):
            raise EmitterConfigError(
                f"otel_audit: {where}: the value of {name!r} contains {_first_bad(value, _PRINTABLE)}, "
                "which cannot be sent in a header (printable ASCII only)"
            )


@dataclass(frozen=True)
class AuditSettings:
    """The resolved export settings. Headers (they hold the ingest token) are kept out of ``repr``."""

    endpoint: str
    protocol: str = _DEFAULT_PROTOCOL
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    service_name: str | None = _DEFAULT_SERVICE_NAME
    insecure: bool | None = None
    timeout: float = _DEFAULT_TIMEOUT_S
    redact: tuple[str, ...] = DEFAULT_REDACT
    #: where undeliverable events wait (``None``: no spool, events that cannot be sent are lost)
    spool_dir: str | None = None
    spool_max_bytes: int = _DEFAULT_SPOOL_MAX_BYTES

    def header_dict(self) -> dict[str, str]:
        return dict(self.headers)

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise EmitterConfigError(
                f"otel_audit: protocol must be one of {PROTOCOLS}, not {self.protocol!r}"
            )
        check_endpoint(self.endpoint, "endpoint")
        check_headers(self.headers, "headers")
        if self.service_name is not None and (
            not self.service_name.strip() or not self.service_name.isprintable()
        ):
            raise EmitterConfigError(
                f"otel_audit: service_name must be printable text, not {self.service_name!r}"
            )
        if not self.timeout > 0:
            raise EmitterConfigError(f"otel_audit: timeout must be positive, not {self.timeout}")
        if self.spool_max_bytes < 64 * 1024:
            raise EmitterConfigError(
                f"otel_audit: spool_max_bytes must be at least 65536, not {self.spool_max_bytes}"
            )


def resolve_settings(
    *,
    endpoint: str | None = None,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    service_name: str | None = None,
    insecure: bool | None = None,
    protocol: str | None = None,
    timeout: float | None = None,
    redact: Iterable[str] | None = None,
    redact_defaults: bool = True,
    spool_dir: str | os.PathLike[str] | None = None,
    spool_max_bytes: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> AuditSettings:
    """Argument, else environment, else default, for every setting; then validate."""
    env = os.environ if environ is None else environ
    proto = (protocol or env.get(ENV_PROTOCOL) or _std_protocol(env) or _DEFAULT_PROTOCOL).strip().lower()
    if proto in ("http", "http/json"):  # only protobuf is spoken; accept the loose spellings
        proto = PROTOCOL_HTTP
    default_endpoint = _DEFAULT_GRPC_ENDPOINT if proto == PROTOCOL_GRPC else _DEFAULT_HTTP_ENDPOINT
    if proto not in PROTOCOLS:
        where = "protocol" if protocol else f"protocol ({ENV_PROTOCOL})"
        raise EmitterConfigError(f"otel_audit: {where} must be one of {PROTOCOLS}, not {proto!r}")
    url = (endpoint or env.get(ENV_ENDPOINT) or env.get(ENV_OTLP_ENDPOINT) or default_endpoint).strip()
    check_endpoint(
        url,
        "endpoint"
        if endpoint
        else f"endpoint ({ENV_ENDPOINT})"
        if env.get(ENV_ENDPOINT)
        else f"endpoint ({ENV_OTLP_ENDPOINT})",
    )
    if proto == PROTOCOL_HTTP:
        url = _with_logs_path(url)

    merged = dict(parse_headers(env.get(ENV_HEADERS, "")) if headers is None else headers)
    check_headers(
        ((str(k).strip().lower(), str(v).strip()) for k, v in merged.items()),
        "headers" if headers is not None else f"headers ({ENV_HEADERS})",
    )
    bearer = token if token is not None else env.get(ENV_TOKEN)
    if bearer:
        check_token(bearer, "token" if token is not None else f"token ({ENV_TOKEN})")
        merged["authorization"] = f"Bearer {bearer}"

    names = list(DEFAULT_REDACT) if redact_defaults else []
    names.extend(redact if redact is not None else split_list(env.get(ENV_REDACT, "")))

    service = service_name or env.get(ENV_SERVICE_NAME) or env.get(ENV_SERVICE_NAME_STD) or None
    spool = str(spool_dir) if spool_dir is not None else env.get(ENV_SPOOL_DIR)
    if spool is None or not spool.strip():
        spool = default_spool_dir(env, service, url)
    elif spool.strip().lower() in SPOOL_OFF:
        spool = None
    settings = AuditSettings(
        endpoint=url,
        protocol=proto,
        headers=tuple((k.strip().lower(), v.strip()) for k, v in merged.items()),
        service_name=service,
        insecure=insecure if insecure is not None else _parse_bool(env.get(ENV_INSECURE)),
        timeout=_number(timeout, env, ENV_TIMEOUT, _DEFAULT_TIMEOUT_S, "timeout"),
        redact=tuple(dict.fromkeys(n for n in names if n)),
        spool_dir=spool,
        spool_max_bytes=int(
            _number(spool_max_bytes, env, ENV_SPOOL_MAX_BYTES, _DEFAULT_SPOOL_MAX_BYTES, "spool_max_bytes")
        ),
    )
    settings.validate()
    return settings


def _number(given: float | None, env: Mapping[str, str], name: str, default: float, param: str) -> float:
    raw: object = given if given is not None else env.get(name) or default
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        where = param if given is not None else f"{param} ({name})"
        raise EmitterConfigError(f"otel_audit: {where} must be a number, not {raw!r}") from None


def default_spool_dir(env: Mapping[str, str], service: str | None, endpoint: str) -> str:
    """One spool per (service, endpoint), so a spool is only ever replayed to where it was meant."""
    state = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    key = hashlib.sha256(endpoint.encode()).hexdigest()[:12]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in (service or "default"))[:64]
    return os.path.join(state, "otel-audit", "spool", f"{name}-{key}")


def split_list(raw: str, sep: str = ",") -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]``."""
    return [item.strip() for item in raw.split(sep) if item.strip()]


def parse_headers(raw: str) -> dict[str, str]:
    """The OTLP header syntax ``k1=v1,k2=v2`` (as in ``OTEL_EXPORTER_OTLP_HEADERS``)."""
    out: dict[str, str] = {}
    for item in split_list(raw):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            out[key.strip().lower()] = value.strip()
    return out


def _std_protocol(env: Mapping[str, str]) -> str | None:
    value = env.get(ENV_OTLP_PROTOCOL, "").strip().lower()
    return value if value in PROTOCOLS else None


def _with_logs_path(url: str) -> str:
    """OTLP/HTTP posts to ``<base>/v1/logs``; a bare base URL gets the signal path appended."""
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        return url.rstrip("/") + _HTTP_LOGS_PATH
    return url


def _parse_bool(raw: str | None) -> bool | None:
    if raw is None or not raw.strip():
        return None
    return raw.strip().lower() in ("1", "true", "yes", "on")
