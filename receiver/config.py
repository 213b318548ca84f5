"""``serve``'s configuration (SPEC section 4): YAML with ``${ENV}`` expansion → frozen, validated
objects. Every default lives here, once; command-line flags override the file."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from receiver.alerts.config import Alerts
from receiver.store import DEFAULT_STORE_URL
from receiver.streams.config import Stream, unique_names

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


#: Named policies usable anywhere a policy is (``default: pci`` or ``{preset: hipaa, hot_days: 30}``):
#: SOC 2 auditors sample across a 12-month period (kept searchable for all of it); PCI DSS 10.5.1
#: wants 12 months with the last 3 immediately available; HIPAA documentation is kept 6 years.
PRESETS: dict[str, tuple[int, int]] = {
    "soc2": (365, 365),
    "pci": (90, 365),
    "hipaa": (365, 2190),
}


def _expand_preset(data: object) -> object:
    """``"pci"`` → ``{"hot_days": 90, "retain_days": 365}``; explicit fields win over the preset's."""
    if isinstance(data, str):
        data = {"preset": data}
    if isinstance(data, dict) and data.get("preset") is not None:
        name = data["preset"]
        if name not in PRESETS:
            raise ValueError(f"unknown retention preset {name!r}: use one of {', '.join(sorted(PRESETS))}")
        hot, retain = PRESETS[name]
        explicit = {k: v for k, v in data.items() if v is not None}
        return {"hot_days": hot, "retain_days": retain, **explicit}
    return data


class Policy(_Frozen):
    """How long a tenant's events stay searchable in the store (``hot_days``) and kept at all,
    in the store or the archive (``retain_days``)."""

    preset: str | None = Field(
        default=None, description="soc2 (365/365), pci (90/365) or hipaa (365/2190); explicit fields win"
    )
    hot_days: int = Field(
        default=DEFAULT_HOT_DAYS, ge=1, description="days an event stays searchable in the store"
    )
    retain_days: int = Field(
        default=DEFAULT_RETAIN_DAYS, ge=1, description="days an event is kept at all (store or archive)"
    )

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: object) -> object:
        return _expand_preset(data)

    @model_validator(mode="after")
    def _order(self) -> Policy:
        if self.hot_days > self.retain_days:
            raise ValueError("hot_days cannot exceed retain_days")
        return self


class PartialPolicy(_Frozen):
    """A tenant's override of the default policy; unset fields come from ``retention.default``."""

    preset: str | None = Field(default=None, description="soc2, pci or hipaa")
    hot_days: int | None = Field(default=None, ge=1, description="days searchable in the store")
    retain_days: int | None = Field(default=None, ge=1, description="days kept at all")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: object) -> object:
        return _expand_preset(data)


class Retention(_Frozen):
    default: Policy = Field(default=Policy(), description="the policy of every tenant without its own")
    tenants: dict[str, PartialPolicy] = Field(default={}, description="tenant id → its policy")
    interval_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="how often `serve` runs the archive job, in seconds (0: never; `retention run` still works)",
    )

    def policy_for(self, tenant: str) -> Policy:
        override = self.tenants.get(tenant)
        if override is None:
            return self.default
        retain = override.retain_days or self.default.retain_days
        return Policy(
            preset=override.preset,
            hot_days=min(override.hot_days or self.default.hot_days, retain),
            retain_days=retain,
        )


class Ingest(_Frozen):
    """OTLP intake limits, back-pressure and durability (README "Limits", "Durability")."""

    ack: Literal["journal", "store"] = Field(
        default="journal",
        description="when an export is acknowledged: `journal` once its validated rows are fsync'd in the receiver's local journal (the store gets them within `commit_interval_seconds`, in big batches; a store outage is absorbed until the journal is full); `store` once the store inserted them (a group commit per handful of requests, refused at once when the store is down)",
    )
    journal_dir: str | None = Field(
        default=None,
        description="the journal directory; default `<data dir>/journal` for chDB, `./otel-audit-journal` for a ClickHouse server store. One receiver process per directory (locked).",
    )
    journal_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        description="journal size on disk (events acknowledged, not yet in the store) before requests are refused with UNAVAILABLE / 503; the same events are held in memory as Arrow tables for the commit",
    )
    journal_segment_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="journal segment file size (a segment is deleted once all its events are in the store)",
    )
    commit_interval_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="with the journal: how long acknowledged events may wait to be batched into one store insert (each commit costs the engine ~20-30 ms even for one event: at 0.5 s a trickle of admin reads' trail events costs 5 % of a core rather than 12 %, and searches compete less)",
    )
    max_batch_rows: int = Field(
        default=100_000,
        ge=1,
        description="largest store insert, in events",
    )

    grpc_max_message_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="largest gRPC message, after gzip inflation (gRPC's own default)",
    )
    http_max_body_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="largest OTLP/HTTP body, before and after gzip inflation (the Collector's default)",
    )
    max_queue_rows: int = Field(
        default=200_000,
        ge=1,
        description="(`ack: store`) events waiting for the store before requests are refused with UNAVAILABLE / 503",
    )
    max_queue_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        description="memory those waiting events may take (Arrow bytes) before the same push-back",
    )
    commit_timeout_seconds: float = Field(
        default=8.0,
        gt=0,
        description="(`ack: store`) how long a request waits for its group commit before it is told to retry; below the OTel SDKs' 10 s export timeout, so clients hear UNAVAILABLE rather than give up on their own",
    )


class Archive(_Frozen):
    path: str = Field(
        default="./otel-audit-archive",
        description="a local directory, or s3://bucket/prefix?region=...&endpoint_override=host:port (pyarrow's S3)",
    )


DEFAULT_CHECKPOINT_INTERVAL = 300.0


class PublishTarget(_Frozen):
    """One place every signed checkpoint is copied to: a directory or an HTTP endpoint."""

    dir: str | None = Field(
        default=None, description="directory (e.g. a WORM mount) that receives each checkpoint note as a file"
    )
    url: str | None = Field(
        default=None, description="HTTP(S) endpoint each checkpoint note is POSTed to (text/plain)"
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="extra HTTP headers for `url` (e.g. authorization)"
    )

    @model_validator(mode="after")
    def _one(self) -> PublishTarget:
        if (self.dir is None) == (self.url is None):
            raise ValueError("a publish target has exactly one of `dir` or `url`")
        return self


class Integrity(_Frozen):
    """The verifiable log (docs/INTEGRITY.md). With no ``key``, an embedded (chDB) store gets a
    key made on first start in ``<data dir>-integrity/keys/``, beside (not inside) the data
    directory, and checkpoints are published to ``<data dir>-integrity/checkpoints/``; a
    ClickHouse server store writes no checkpoints until a key is configured. Production:
    ``otel-audit keygen --out DIR`` and keep the private key away from the data."""

    key: str | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs checkpoints; must be outside the store's data directory unless key_in_data_dir is true",
    )
    publish: tuple[PublishTarget, ...] = Field(
        default=(),
        description="where every signed checkpoint is also published: `{dir: PATH}` and/or `{url: URL, headers: {...}}`",
    )
    checkpoint_dir: str | None = Field(
        default=None, description="deprecated: same as one `publish: [{dir: ...}]` entry"
    )
    checkpoint_interval: float = Field(
        default=DEFAULT_CHECKPOINT_INTERVAL,
        gt=0,
        description="seconds between checkpoints of a log that grew (one is also written at shutdown)",
    )
    instance_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="this receiver's log suffix (origin otel-audit/<tenant>/<instance>); default: made once and kept in <data dir>/integrity/instance-id. Give each receiver its own.",
    )
    key_in_data_dir: bool = Field(
        default=False,
        description="allow (and default to) a signing key inside the store's data directory: anyone who can rewrite the data can then re-sign it",
    )

    def publish_targets(self) -> tuple[PublishTarget, ...]:
        extra = (PublishTarget(dir=self.checkpoint_dir),) if self.checkpoint_dir else ()
        return self.publish + extra


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


class EventSchemaRule(_Frozen):
    """One event schema (SPEC section 12); checked with ``otel_audit.event_schemas``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    event_name: str = Field(
        pattern=r"^audit\..+", description="The event name the schema applies to, e.g. audit.payment.update."
    )
    json_schema: dict[str, object] = Field(
        alias="schema", description="A JSON Schema over the record's attributes (audit.changes parsed)."
    )
    version: str = Field(default="1", description="The schema's version, named in rejections and counts.")

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        return str(value) if isinstance(value, (int, float)) else value

    on_violation: Literal["reject", "flag"] = Field(
        default="reject",
        description="reject: refused through OTLP partial success; flag: stored with audit.schema.violation.",
    )

    @model_validator(mode="after")
    def _valid_schema(self) -> EventSchemaRule:
        self.to_schema()  # a broken JSON Schema fails at load
        return self

    def to_schema(self) -> object:
        from otel_audit.event_schemas import EventSchema

        return EventSchema(self.event_name, self.json_schema, self.version, self.on_violation)


class Limits(_Frozen):
    """Protection from hostile or broken clients (README "Limits"): read timeouts, connection
    caps and per-token/per-address fair shares of the in-flight request slots."""

    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="a connection must send a request's complete headers within this (else closed)",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="an OTLP/HTTP body must arrive completely within this after its headers (else 408, connection closed)",
    )
    max_connections: int = Field(
        default=1024,
        ge=1,
        description="open connections per HTTP listener (OTLP/HTTP, admin); more are answered 503 and closed "
        "(lowered at start so that all listeners together leave fd_reserve file descriptors free)",
    )
    max_connections_per_address: int = Field(
        default=256, ge=1, description="open connections per HTTP listener from one client address"
    )
    http_max_in_flight: int = Field(
        default=32,
        ge=1,
        description="OTLP/HTTP requests read or processed at once (bounds memory); more get 503",
    )
    grpc_max_concurrent_calls: int = Field(
        default=32,
        ge=1,
        description="OTLP/gRPC Export calls processed at once; more get UNAVAILABLE with RetryInfo",
    )
    max_in_flight_per_token: int = Field(
        default=12,
        ge=1,
        description="in-flight OTLP requests (each transport) of one ingest token (above a Collector's 10 "
        "export consumers); more get HTTP 429 / gRPC "
        "RESOURCE_EXHAUSTED with a retry delay, so one token cannot starve the others",
    )
    max_in_flight_per_address: int = Field(
        default=16,
        ge=1,
        description="in-flight OTLP requests (each transport) from one client address; more get 429 / RESOURCE_EXHAUSTED",
    )
    fd_reserve: int = Field(
        default=512,
        ge=64,
        description="file descriptors kept free for the store, journal and checkpoints (serve raises its soft "
        "fd limit to the hard limit at start and caps connections below it)",
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


class Sources(_Frozen):
    """Source-side gap detection (docs/INTEGRITY.md, "Source-side gaps")."""

    gap_grace_seconds: float = Field(
        default=900.0,
        ge=0,
        description="a missing audit.source.seq is reported as a gap only once a higher number of the "
        "same source arrived at least this long ago (events still in an emitter's queue or disk "
        "spool, or in the receiver's journal, are not gaps yet)",
    )


class Config(_Frozen):
    """The whole file. Relative paths are relative to the directory ``serve`` runs in."""

    store: str = Field(
        default=DEFAULT_STORE_URL,
        description="chdb:///abs/path, chdb://./rel/path (embedded) or clickhouse://user:pass@host:8123/db",
    )
    listen: Listen = Field(default=Listen(), description="where the receiver listens")
    ingest_tokens: tuple[IngestToken, ...] = Field(
        default=(), description="apps' credentials; none: open ingest, allowed on loopback only"
    )
    admin_tokens: tuple[AdminToken, ...] = Field(
        default=(), description="credentials of the admin API and UI; none: open, allowed on loopback only"
    )
    retention: Retention = Field(default=Retention(), description="how long events are kept")
    archive: Archive = Field(default=Archive(), description="where expired hot events are archived")
    integrity: Integrity = Field(default=Integrity(), description="tamper evidence: signing and checkpoints")
    sql_endpoint: SqlEndpoint | None = Field(
        default=None, description="read-only ClickHouse-HTTP SQL endpoint (Grafana); off when absent"
    )
    ingest: Ingest = Field(default=Ingest(), description="OTLP intake limits, back-pressure and durability")
    alerts: Alerts = Field(
        default=Alerts(), description="automated log review: rules, destinations (docs/ALERTS.md)"
    )
    admin: AdminWeb = Field(default=AdminWeb(), description="Admin UI/API web settings (allowed Host names).")
    streams: tuple[Stream, ...] = Field(
        default=(),
        description="log streams: every stored event delivered to a SIEM or a bucket (docs/STREAMS.md)",
    )
    schemas: tuple[EventSchemaRule, ...] = Field(
        default=(),
        description="Event schemas, or the path of a JSON/YAML file holding them "
        "(the file otel_audit.testing.assert_valid reads).",
    )

    @field_validator("streams")
    @classmethod
    def _stream_names(cls, value: tuple[Stream, ...]) -> tuple[Stream, ...]:
        return unique_names(value)

    @field_validator("schemas", mode="before")
    @classmethod
    def _schemas_file(cls, value: object) -> object:
        if isinstance(value, (str, Path)):
            from otel_audit.event_schemas import read_schema_entries

            try:
                return read_schema_entries(value)
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read schemas file {value}: {exc}") from exc
        return value

    limits: Limits = Field(
        default=Limits(),
        description="protection from hostile or broken clients: timeouts, connection caps, fair shares",
    )
    metrics: MetricsAccess = Field(default=MetricsAccess(), description="who may read /metrics")
    sources: Sources = Field(default=Sources(), description="source-side gap detection")

    def check_exposure(self) -> None:
        """Refuse to listen beyond loopback without credentials (SPEC section 4)."""
        if not self.ingest_tokens:
            for name in ("grpc", "http"):
                if not is_loopback(getattr(self.listen, name)):
                    raise ConfigError(
                        f"listen.{name} {getattr(self.listen, name)} is not a loopback address and no "
                        "ingest_tokens are configured: add ingest_tokens or listen on 127.0.0.1"
                    )
        if not self.admin_tokens and not is_loopback(self.listen.admin):
            raise ConfigError(
                f"listen.admin {self.listen.admin} is not a loopback address and no admin_tokens are configured"
            )


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


def load_config(path: str | Path | None = None, **overrides: object) -> Config:
    """Read ``path`` (if any), expand ``${ENV}``, apply non-None overrides, validate."""
    data: dict[str, object] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
        try:
            loaded = yaml.safe_load(expand_env(text)) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config {path} must be a YAML mapping")
        data = loaded
    listen = dict(data.get("listen") or {})  # type: ignore[call-overload]
    for key in ("grpc", "http", "admin"):
        value = overrides.pop(f"{key}_listen", None)
        if value is not None:
            listen[key] = value
    data["listen"] = listen
    ack = overrides.pop("ack", None)
    for key, value in overrides.items():
        if value is not None:
            data[key] = value
    if ack is not None:  # --ack: the one ingest setting with a flag
        ingest = data.get("ingest") or {}
        if isinstance(ingest, dict):
            data["ingest"] = {**ingest, "ack": ack}
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise ConfigError(f"{where}: {first['msg']}") from exc
