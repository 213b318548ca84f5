"""Who may connect and with what: listen addresses, ingest and admin tokens, the SQL endpoint,
allowed Host names, /metrics access."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from receiver.config.base import (
    DEFAULT_ADMIN,
    DEFAULT_GRPC,
    DEFAULT_HTTP,
    DEFAULT_SQL,
    _Frozen,
    split_host_port,
)


class Listen(_Frozen):
    grpc: str = Field(default=DEFAULT_GRPC, description="OTLP/gRPC address, host:port")
    http: str = Field(default=DEFAULT_HTTP, description="OTLP/HTTP address (POST /v1/logs), host:port")
    admin: str = Field(default=DEFAULT_ADMIN, description="admin API and UI address, host:port")

    @field_validator("grpc", "http", "admin")
    @classmethod
    def _host_port(cls, value: str) -> str:
        split_host_port(value)
        return value


class IngestToken(_Frozen):
    """An app's credential: sent as ``authorization: Bearer <token>``; it fixes the tenant of
    every event sent with it."""

    token: str = Field(
        min_length=16, description="the secret apps send (`otel-audit init` makes 32 random characters)"
    )
    tenant: str = Field(min_length=1, description="tenant id given to every event sent with this token")


class AdminToken(_Frozen):
    token: str = Field(min_length=16, description="the secret sent as `authorization: Bearer <token>`")
    role: Literal["auditor", "admin"] = Field(
        description="auditor: search and export; admin: also retention, holds and quarantine"
    )
    tenants: tuple[str, ...] = Field(
        default=(), description="tenant ids this token may read, or ['*'] for all (required)"
    )
    name: str = Field(default="", description="who the token is, for the audit trail of reads and exports")

    @model_validator(mode="after")
    def _tenants_given(self) -> AdminToken:
        if not self.tenants:
            raise ValueError("an admin token needs tenants: a list of tenant ids, or ['*'] for all")
        return self


class SqlUser(_Frozen):
    """A login of the read-only SQL endpoint (Grafana's data source user)."""

    user: str = Field(min_length=1, description="login name")
    password: str = Field(min_length=12, description="its password")
    tenants: tuple[str, ...] = Field(
        min_length=1, description="tenant ids whose rows this user sees, or ['*'] for all"
    )


class SqlEndpoint(_Frozen):
    """The ClickHouse-HTTP-compatible, read-only query endpoint over the embedded store."""

    listen: str = Field(default=DEFAULT_SQL, description="its address, host:port")
    users: tuple[SqlUser, ...] = Field(min_length=1, description="the logins")
    max_execution_time: int = Field(default=30, ge=1, description="seconds a query may run")
    max_memory_usage: int = Field(default=1 << 30, ge=1 << 20, description="bytes a query may use")
    max_result_rows: int = Field(default=1_000_000, ge=1, description="rows a result may have")
    max_result_bytes: int = Field(default=256 << 20, ge=1 << 10, description="bytes a result may have")
    sessions_per_user: int = Field(
        default=2,
        ge=1,
        le=16,
        description="queries of one user that run at the same time (one read-only chDB session each)",
    )
    queued_per_user: int = Field(
        default=8,
        ge=0,
        le=1000,
        description="Queries of one SQL user that may wait for one of its sessions; beyond that the"
        " user gets ClickHouse's Code 202 (TOO_MANY_SIMULTANEOUS_QUERIES, HTTP 503) at once. Each"
        " user has its own sessions, threads and queue: one user cannot hold another's share.",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        split_host_port(value)
        return value


class AdminWeb(_Frozen):
    """Which names the admin listener answers to (DNS-rebinding defence, issue 13 item 7)."""

    allowed_hosts: tuple[str, ...] = Field(
        default=(),
        description=(
            "Host names (the HTTP Host header, port ignored) the admin UI/API answers besides the "
            "defaults: loopback names and addresses, the admin listen host, and any IP address when "
            "it listens on 0.0.0.0/::. '*.example.com' matches subdomains; '*' turns the check off. "
            "Other hosts get 400."
        ),
    )
    session_ttl_seconds: int = Field(
        default=8 * 3600,
        ge=60,
        le=7 * 86400,
        description=(
            "How long a UI sign-in lasts: POST /api/session turns a token into an HttpOnly, "
            "SameSite=Strict session cookie valid for this many seconds (docs/SESSIONS.md)"
        ),
    )
    secure_cookies: bool = Field(
        default=False,
        description=(
            "Mark the session cookie Secure on every answer (set this behind a TLS-terminating proxy); "
            "it is Secure anyway on requests that arrive over https"
        ),
    )


class MetricsAccess(_Frozen):
    """Who may read ``/metrics`` on the admin listener."""

    auth: Literal["loopback", "token", "none"] = Field(
        default="loopback",
        description="loopback: peers on the same host, or any caller with an admin token or metrics.token; "
        "token: only with an admin token or metrics.token; none: anyone who reaches the admin listener",
    )
    token: str | None = Field(
        default=None, min_length=16, description="a bearer token that may read /metrics only (for a scraper)"
    )
