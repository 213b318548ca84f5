"""The whole configuration file and how it is read: YAML with ``${ENV}`` expansion, flag overrides,
validation into frozen objects."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from receiver.alerts.config import Alerts
from receiver.config.access import AdminToken, AdminWeb, IngestToken, Listen, MetricsAccess, SqlEndpoint
from receiver.config.base import ConfigError, _Frozen, expand_env, is_loopback
from receiver.config.ingest import EventSchemaRule, Ingest, Limits, Sources
from receiver.config.integrity import Integrity
from receiver.config.retention import Archive, Retention
from receiver.store import DEFAULT_STORE_URL
from receiver.streams.config import Stream, unique_names
from receiver.viewer.config import Viewer


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

    @model_validator(mode="after")
    def _stream_alert_destinations(self) -> Config:
        known = {d.name for d in self.alerts.destinations}
        for stream in self.streams:
            missing = sorted(set(stream.backlog_destinations) - known)
            if missing:
                raise ValueError(
                    f"stream {stream.name}: backlog_destinations: unknown alert destination(s) {', '.join(missing)}"
                )
        return self

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
    viewer: Viewer = Field(
        default=Viewer(),
        description="the tenant-facing viewer: token secrets, framing, theming (docs/VIEWER.md)",
    )

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
