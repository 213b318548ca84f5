"""The ``streams:`` section of the receiver's config (SPEC section 11): one entry per stream."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from receiver.filters import FilterError, check_match

KINDS = ("webhook", "splunk_hec", "otlp_http", "otlp_grpc", "syslog", "s3")
#: fields that hold credentials: never shown by GET /api/streams
SECRET_FIELDS = ("secret", "token", "secret_access_key", "headers")
#: what each kind needs besides the common fields
_REQUIRED = {
    "webhook": ("url",),
    "splunk_hec": ("url", "token"),
    "otlp_http": ("endpoint",),
    "otlp_grpc": ("endpoint",),
    "syslog": ("host", "port"),
    "s3": ("bucket",),
}


class Stream(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="the stream's name (status, replay, metrics)"
    )
    kind: Literal["webhook", "splunk_hec", "otlp_http", "otlp_grpc", "syslog", "s3"] = Field(
        description="webhook: signed gzip NDJSON POST; splunk_hec: Splunk HTTP Event Collector; "
        "otlp_http: OTLP/HTTP protobuf log records; otlp_grpc: the same over OTLP/gRPC; syslog: RFC 5424 over TCP (octet-counted, optional TLS); "
        "s3: time-partitioned NDJSON.gz or Parquet objects with a manifest per batch"
    )
    enabled: bool = Field(default=True, description="deliver at all (a disabled stream keeps its positions)")
    tenants: tuple[str, ...] = Field(
        default=("*",), description='tenants whose events are delivered ("*": all)'
    )
    filter: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="only events matching these filters (SPEC sections 3 and 8 forms, and service_name)",
    )
    batch_size: int = Field(default=1000, ge=1, le=100_000, description="events per delivery at most")
    batch_seconds: float = Field(
        default=1.0, ge=0, le=3600, description="a batch not yet full is sent once it waited this long"
    )
    poll_seconds: float = Field(
        default=0.5, gt=0, le=60, description="how often the store is read for new events"
    )
    retry_initial_seconds: float = Field(
        default=1.0, gt=0, le=3600, description="the first retry's delay; doubled per failure, with jitter"
    )
    retry_max_seconds: float = Field(
        default=300.0, gt=0, le=86400, description="the longest delay between retries"
    )
    timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="per delivery attempt")
    lease_seconds: int = Field(
        default=60,
        ge=2,
        le=3600,
        description="the lease term of one receiver delivering this stream; after a crash another takes over within it",
    )
    backlog_limit: int = Field(
        default=1_000_000,
        ge=1,
        description="undelivered events above which the stream warns, sets otel_audit_stream_backlog_exceeded "
        "and raises a stream-backlog alert (with alerts enabled)",
    )
    backlog_destinations: tuple[str, ...] = Field(
        default=(),
        description="where the stream-backlog alert goes (names from alerts.destinations); it is recorded "
        "as an audit.alert.fired event of each tenant whose events wait either way",
    )
    backlog_severity: Literal["info", "low", "medium", "high", "critical"] = Field(
        default="high", description="the stream-backlog alert's severity"
    )
    # webhook / splunk_hec
    url: str = Field(default="", pattern=r"^(https?://.*)?$", description="webhook or HEC event endpoint URL")
    secret: str = Field(
        default="", description="webhook: HMAC-SHA256 key of the X-Otel-Audit-Signature header"
    )
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers (HTTP kinds)")
    token: str = Field(default="", description="splunk_hec: the HEC token (Authorization: Splunk <token>)")
    index: str = Field(
        default="", description="splunk_hec: the index events go to (empty: the token's default)"
    )
    sourcetype: str = Field(default="otel-audit", description="splunk_hec: the sourcetype of the events")
    # otlp_http
    endpoint: str = Field(
        default="",
        pattern=r"^(https?://.*)?$",
        description="otlp_http: the Collector's base URL (/v1/logs is added)",
    )
    # syslog
    host: str = Field(default="", description="syslog: the collector's host name or address")
    port: int = Field(default=0, ge=0, le=65535, description="syslog: its TCP port")
    tls: bool = Field(default=False, description="syslog: TLS (RFC 5425)")
    tls_ca_file: str = Field(
        default="",
        description="syslog and otlp_grpc: CA bundle that verifies the collector (empty: system CAs)",
    )
    format: Literal["json", "cef", "parquet"] = Field(
        default="json",
        description="syslog: the message, an event as JSON or CEF; s3: the objects, NDJSON.gz (json) "
        "or Parquet (parquet, zstd, the stored columns as the admin's Parquet export writes them)",
    )
    facility: int = Field(default=13, ge=0, le=23, description="syslog: the facility (13: log audit)")
    # s3
    bucket: str = Field(default="", description="s3: the bucket")
    prefix: str = Field(default="", description="s3: the key prefix of the objects and manifests")
    endpoint_url: str = Field(default="", description="s3: an S3-compatible endpoint (empty: AWS)")
    region: str = Field(default="us-east-1", description="s3: the region")
    access_key_id: str = Field(default="", description="s3: the access key (empty: boto3's usual sources)")
    secret_access_key: str = Field(
        default="", description="s3: the secret key (empty: boto3's usual sources)"
    )

    @model_validator(mode="after")
    def _check(self) -> Stream:
        missing = [f for f in _REQUIRED[self.kind] if not getattr(self, f)]
        if missing:
            raise ValueError(f"stream {self.name}: a {self.kind} stream needs {', '.join(missing)}")
        allowed = {"syslog": ("json", "cef"), "s3": ("json", "parquet")}.get(self.kind, ("json",))
        if self.format not in allowed:
            raise ValueError(f"stream {self.name}: format {self.format} is not for a {self.kind} stream")
        try:
            check_match(self.filter)
        except FilterError as exc:
            raise ValueError(f"stream {self.name}: filter: {exc}") from exc
        return self

    def public(self) -> dict[str, Any]:
        """The configuration without credentials (what the API shows)."""
        data = self.model_dump(mode="json")
        for name in SECRET_FIELDS:
            if isinstance(data.get(name), dict):
                data[name] = {k: "***" for k in data[name]}
            elif data.get(name):
                data[name] = "***"
        return data


def unique_names(streams: tuple[Stream, ...]) -> tuple[Stream, ...]:
    names = [s.name for s in streams]
    if len(names) != len(set(names)):
        raise ValueError("streams: names must be unique")
    return streams
