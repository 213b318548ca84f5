"""``serve``'s configuration (SPEC section 4): YAML with ``${ENV}`` expansion → frozen, validated
objects. Every default lives here, once, one module per part of the file; command-line flags
override the file."""

from __future__ import annotations

from receiver.config.access import (
    AdminToken,
    AdminWeb,
    IngestToken,
    Listen,
    MetricsAccess,
    SqlEndpoint,
    SqlUser,
)
from receiver.config.base import (
    DEFAULT_ADMIN,
    DEFAULT_GRPC,
    DEFAULT_HOT_DAYS,
    DEFAULT_HTTP,
    DEFAULT_RETAIN_DAYS,
    DEFAULT_SQL,
    ConfigError,
    expand_env,
    is_loopback,
    split_host_port,
)
from receiver.config.ingest import EventSchemaRule, Ingest, Limits, Sources
from receiver.config.integrity import DEFAULT_CHECKPOINT_INTERVAL, Integrity, PublishTarget
from receiver.config.model import Config, load_config
from receiver.config.retention import PRESETS, Archive, PartialPolicy, Policy, Retention

__all__ = [
    "DEFAULT_ADMIN",
    "DEFAULT_CHECKPOINT_INTERVAL",
    "DEFAULT_GRPC",
    "DEFAULT_HOT_DAYS",
    "DEFAULT_HTTP",
    "DEFAULT_RETAIN_DAYS",
    "DEFAULT_SQL",
    "PRESETS",
    "AdminToken",
    "AdminWeb",
    "Archive",
    "Config",
    "ConfigError",
    "EventSchemaRule",
    "Ingest",
    "IngestToken",
    "Integrity",
    "Limits",
    "Listen",
    "MetricsAccess",
    "PartialPolicy",
    "Policy",
    "PublishTarget",
    "Retention",
    "Sources",
    "SqlEndpoint",
    "SqlUser",
    "expand_env",
    "is_loopback",
    "load_config",
    "split_host_port",
]
