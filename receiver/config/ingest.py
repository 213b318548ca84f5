"""OTLP intake: durability and back-pressure, client limits, event schemas, source-gap detection."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from receiver.config.base import _Frozen


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
        default=1.5,
        gt=0,
        le=60,
        description="with the journal: how long acknowledged events may wait to be batched into one store insert (each commit costs the engine ~20-50 ms even for one event, and small parts cost it merges later: under load, 1.5 s with 51,200-row inserts measured ~1.5x less engine CPU per event than 0.5 s; a trickle of admin reads' trail events costs less of a core too)",
    )
    max_batch_rows: int = Field(
        default=51_200,
        ge=1,
        description="largest store insert, in events (a commit's transient memory in the engine grows ~1.4 KB a row)",
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


class Sources(_Frozen):
    """Source-side gap detection (docs/INTEGRITY.md, "Source-side gaps")."""

    gap_grace_seconds: float = Field(
        default=900.0,
        ge=0,
        description="a missing audit.source.seq is reported as a gap only once a higher number of the "
        "same source arrived at least this long ago (events still in an emitter's queue or disk "
        "spool, or in the receiver's journal, are not gaps yet)",
    )
