"""Lifecycle of the emitter: ``configure()``, ``force_flush()``, ``shutdown()`` and the active pipeline.

``configure()`` builds its own ``LoggerProvider`` (resource with ``service.name``) with a
``BatchLogRecordProcessor`` in front of the OTLP exporter, or reuses a provider the application
already has (``logger_provider=`` or ``reuse_global=True``). Until it is called, events go through
the global OpenTelemetry logger provider (a no-op unless the application configured one).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata

from opentelemetry import _logs as logs_api
from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.resources import Resource

from otel_audit import attributes as attr
from otel_audit.config import DEFAULT_REDACT, AuditSettings, resolve_settings
from otel_audit.deferred import DEFERRED
from otel_audit.diff import Redactor
from otel_audit.exporter import build_exporter, build_processor

LOGGER_NAME = "otel_audit"


def _version() -> str:
    try:
        return metadata.version("otel-audit")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0.0.0"


_VERSION = _version()


@dataclass(frozen=True)
class Pipeline:
    """What ``record()`` needs on its hot path: a logger and the redaction rules."""

    logger: logs_api.Logger
    redactor: Redactor
    #: the provider behind ``logger`` when ``configure()`` made or was given one: the deferred
    #: worker flushes it between large batches so that they never overflow the SDK's queue
    provider: logs_api.LoggerProvider | None = None


@dataclass
class AuditHandle:
    """The result of ``configure()``. ``owns_provider`` says whether shutdown stops the provider."""

    logger_provider: logs_api.LoggerProvider
    owns_provider: bool
    settings: AuditSettings | None = None
    exporter: LogRecordExporter | None = None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait until queued events are exported (or the timeout passes); deferred events (the ORM
        integrations') are emitted first."""
        DEFERRED.drain()
        flush = getattr(self.logger_provider, "force_flush", None)
        return bool(flush(timeout_millis)) if callable(flush) else True

    def shutdown(self) -> None:
        """Flush and stop export when the provider is ours; a reused provider is only flushed."""
        if self.owns_provider:
            DEFERRED.drain()
            stop = getattr(self.logger_provider, "shutdown", None)
            if callable(stop):
                stop()
        else:
            self.force_flush()


@dataclass
class _State:
    pipeline: Pipeline
    handle: AuditHandle | None = None


def _global_pipeline() -> Pipeline:
    return Pipeline(logs_api.get_logger(LOGGER_NAME, _VERSION), Redactor.of(DEFAULT_REDACT))


STATE = _State(_global_pipeline())
_lock = threading.Lock()


def configure(
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
    logger_provider: logs_api.LoggerProvider | None = None,
    reuse_global: bool = False,
    exporter: LogRecordExporter | None = None,
) -> AuditHandle:
    """Set up audit export; replaces (and shuts down) any previous configuration.

    - ``endpoint``: OTLP endpoint (``OTEL_AUDIT_ENDPOINT``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
      default ``http://127.0.0.1:4317``, or ``:4318`` + ``/v1/logs`` for ``http/protobuf``).
    - ``token``: ingest token sent as ``authorization: Bearer <token>`` (``OTEL_AUDIT_TOKEN``).
    - ``headers``: extra export headers (``OTEL_AUDIT_HEADERS``, ``k=v,k2=v2``).
    - ``protocol``: ``grpc`` (default) or ``http/protobuf`` (``OTEL_AUDIT_PROTOCOL``).
    - ``redact``: field names redacted in addition to ``DEFAULT_REDACT`` (``OTEL_AUDIT_REDACT``);
      ``redact_defaults=False`` drops the defaults.
    - ``spool_dir``: where events wait while the receiver cannot take them (``OTEL_AUDIT_SPOOL_DIR``,
      default ``~/.local/state/otel-audit/spool/<service>-<endpoint hash>``; ``"off"`` disables);
      ``spool_max_bytes`` bounds it (``OTEL_AUDIT_SPOOL_MAX_BYTES``, default 256 MiB).
    - ``logger_provider``: emit through this provider (its processors decide where events go);
      ``reuse_global=True``: emit through the global one. Neither: a provider of our own.
    - ``exporter``: use this exporter instead of the OTLP one (own provider only).
    """
    settings = resolve_settings(
        endpoint=endpoint,
        token=token,
        headers=headers,
        service_name=service_name,
        insecure=insecure,
        protocol=protocol,
        timeout=timeout,
        redact=redact,
        redact_defaults=redact_defaults,
        spool_dir=spool_dir,
        spool_max_bytes=spool_max_bytes,
    )
    if logger_provider is None and reuse_global:
        logger_provider = logs_api.get_logger_provider()
    if logger_provider is not None:
        handle = AuditHandle(logger_provider, owns_provider=False, settings=settings)
    else:
        resource = Resource.create(
            {attr.SERVICE_NAME: settings.service_name} if settings.service_name else {}
        )
        provider = SdkLoggerProvider(resource=resource)
        chosen = exporter if exporter is not None else build_exporter(settings)
        provider.add_log_record_processor(build_processor(chosen))
        handle = AuditHandle(provider, owns_provider=True, settings=settings, exporter=chosen)
    pipeline = Pipeline(
        handle.logger_provider.get_logger(LOGGER_NAME, _VERSION),
        Redactor.of(settings.redact),
        handle.logger_provider,
    )
    with _lock:
        previous, STATE.handle, STATE.pipeline = STATE.handle, handle, pipeline
    if previous is not None:
        previous.shutdown()
    return handle


def is_configured() -> bool:
    return STATE.handle is not None


def current_handle() -> AuditHandle | None:
    return STATE.handle


def force_flush(timeout_millis: int = 30_000) -> bool:
    """Flush the configured pipeline; ``True`` when nothing is configured."""
    handle = STATE.handle
    if handle is None:
        DEFERRED.drain()
        return True
    return handle.force_flush(timeout_millis)


def shutdown() -> None:
    """Flush and stop the configured pipeline; later events go to the global provider again."""
    with _lock:
        handle, STATE.handle, STATE.pipeline = STATE.handle, None, _global_pipeline()
    if handle is not None:
        handle.shutdown()
