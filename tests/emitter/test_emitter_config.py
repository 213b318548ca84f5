"""configure(): settings resolution, the own-provider pipeline, and export that never blocks."""

from __future__ import annotations

import socket
import time

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

import otel_audit
from otel_audit import attributes as attr
from otel_audit.config import DEFAULT_REDACT, parse_headers, resolve_settings
from otel_audit.exporter import build_exporter


def test_defaults() -> None:
    s = resolve_settings(environ={})
    assert (s.endpoint, s.protocol, s.headers, s.service_name) == ("http://127.0.0.1:4317", "grpc", (), None)
    assert s.redact == DEFAULT_REDACT
    h = resolve_settings(protocol="http/protobuf", environ={})
    assert h.endpoint == "http://127.0.0.1:4318/v1/logs"


def test_argument_beats_audit_env_beats_otlp_env() -> None:
    env = {
        "OTEL_AUDIT_ENDPOINT": "http://audit:4317",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
        "OTEL_AUDIT_TOKEN": "env-token",
        "OTEL_AUDIT_SERVICE_NAME": "billing",
        "OTEL_AUDIT_REDACT": "diagnosis, iban",
        "OTEL_AUDIT_HEADERS": "x-team=payments",
    }
    s = resolve_settings(environ=env)
    assert s.endpoint == "http://audit:4317" and s.service_name == "billing"
    assert s.header_dict() == {"x-team": "payments", "authorization": "Bearer env-token"}
    assert s.redact[-2:] == ("diagnosis", "iban") and "password" in s.redact
    s = resolve_settings(endpoint="https://arg:4317", token="arg-token", environ=env)
    assert s.endpoint == "https://arg:4317" and s.header_dict()["authorization"] == "Bearer arg-token"
    del env["OTEL_AUDIT_ENDPOINT"]
    assert resolve_settings(environ=env).endpoint == "http://collector:4317"
    assert resolve_settings(redact=["x"], redact_defaults=False, environ=env).redact == ("x",)


def test_token_never_in_repr_and_bad_values_rejected() -> None:
    s = resolve_settings(token="s3cr3t", environ={})
    assert "s3cr3t" not in repr(s)
    with pytest.raises(ValueError):
        resolve_settings(protocol="carrier-pigeon", environ={})
    with pytest.raises(ValueError):
        resolve_settings(endpoint="localhost:4317", environ={})
    assert parse_headers("a=1, b = 2,broken") == {"a": "1", "b": "2"}


def test_build_exporter_per_protocol() -> None:
    grpc_exporter = build_exporter(resolve_settings(token="t", spool_dir="off", environ={}))
    assert isinstance(grpc_exporter, GrpcExporter)
    grpc_exporter.shutdown()
    http_exporter = build_exporter(resolve_settings(protocol="http/protobuf", spool_dir="off", environ={}))
    assert isinstance(http_exporter, HttpExporter)
    http_exporter.shutdown()


def test_build_exporter_spools_by_default_in_the_state_directory(tmp_path) -> None:
    from otel_audit.spool import SpoolingExporter

    settings = resolve_settings(service_name="billing", environ={"XDG_STATE_HOME": str(tmp_path)})
    assert settings.spool_dir is not None
    assert settings.spool_dir.startswith(str(tmp_path / "otel-audit" / "spool" / "billing-"))
    spooling = build_exporter(settings)
    try:
        assert isinstance(spooling, SpoolingExporter) and isinstance(spooling.inner, GrpcExporter)
        assert (
            spooling.spool.dir.parent
            == tmp_path / "otel-audit" / "spool" / settings.spool_dir.rsplit("/", 1)[1]
        )
    finally:
        spooling.shutdown()
    other = resolve_settings(
        service_name="billing", endpoint="http://elsewhere:4317", environ={"XDG_STATE_HOME": str(tmp_path)}
    )
    assert other.spool_dir != settings.spool_dir  # one spool per destination
    with pytest.raises(ValueError):
        resolve_settings(spool_max_bytes=10, environ={})


def test_own_provider_batches_and_sets_service_name() -> None:
    exporter = InMemoryLogRecordExporter()
    handle = otel_audit.configure(service_name="docs", exporter=exporter, redact=["diagnosis"])
    try:
        assert handle.owns_provider and otel_audit.is_configured()
        otel_audit.record(
            action="update", resource_type="patient", before={"diagnosis": "a"}, after={"diagnosis": "b"}
        )
        assert otel_audit.force_flush()
        (item,) = exporter.get_finished_logs()
        assert item.resource.attributes[attr.SERVICE_NAME] == "docs"
        assert "[REDACTED]" in str(dict(item.log_record.attributes or {})[attr.CHANGES])
    finally:
        otel_audit.shutdown()
    assert not otel_audit.is_configured()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_record_does_not_wait_on_an_unreachable_receiver() -> None:
    otel_audit.configure(endpoint=f"http://127.0.0.1:{_closed_port()}", timeout=0.5)
    try:
        start = time.perf_counter()
        ids = [otel_audit.record(action="read", resource_type="doc", resource_id=str(i)) for i in range(200)]
        elapsed = time.perf_counter() - start
        assert all(ids)
        assert elapsed < 1.0, elapsed  # blocking on the 0.5 s export timeout would take minutes
    finally:
        otel_audit.shutdown()
