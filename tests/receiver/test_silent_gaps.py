"""Events dropped for a tenant that is not their token's are no longer silent (issue 20): the
receiver logs them, at most once a minute per (token tenant, claimed tenant), and the emitter
logs the OTLP partial-success reason once — real SDK exporters, real receiver, real chDB."""

from __future__ import annotations

import logging

import pytest
from delivery_support import start_receiver

import otel_audit
from otel_audit import exporter as emitter_exporter
from otel_audit.partial_success import PartialSuccessLog, reasons
from receiver.filters import EventFilter

TOKEN = "acme-ingest-token-0123456789"
MISMATCH = "audit.tenant.id does not match the tenant of the ingest token"


@pytest.fixture
def token_receiver(store):
    receiver = start_receiver(store, ingest_tokens=[{"token": TOKEN, "tenant": "acme"}])
    yield receiver
    receiver.stop_listeners()


def _send(claimed: str, n: int = 1) -> None:
    with otel_audit.audit_context(user_id="mallory", tenant_id=claimed):
        for i in range(n):
            otel_audit.record(action="read", resource_type="invoice", resource_id=f"inv-{i}")
    assert otel_audit.force_flush(30_000)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_tenant_mismatch_is_logged_by_receiver_and_emitter(
    token_receiver, store, caplog, monkeypatch, protocol
):
    monkeypatch.setattr(emitter_exporter, "PARTIAL_SUCCESS", PartialSuccessLog())
    port = token_receiver.grpc_port if protocol == "grpc" else token_receiver.http_port
    otel_audit.configure(
        endpoint=f"http://127.0.0.1:{port}",
        token=TOKEN,
        protocol=protocol,
        spool_dir="off",
        service_name="gaps",
    )
    caplog.set_level(logging.WARNING)
    try:
        _send("globex", 3)
        _send("globex", 2)  # a second export with the same reason: no new line on either side
        _send("initech")
        _send("acme")  # the token's own tenant: kept, nothing logged
    finally:
        otel_audit.shutdown()
    emitted = [r.getMessage() for r in caplog.records if r.name == "otel_audit"]
    assert len(emitted) == 1, emitted
    assert (
        emitted[0].startswith("otel_audit: the receiver rejected audit event(s)") and MISMATCH in emitted[0]
    )
    assert emitter_exporter.PARTIAL_SUCCESS.rejected == 6

    received = [r.getMessage() for r in caplog.records if r.name == "otel_audit.receiver"]
    assert len(received) == 2, received  # globex once (3 then 2 within the minute), initech once
    assert received[0].startswith(
        "dropped 3 audit event(s) claiming tenant 'globex' sent with an ingest token of tenant 'acme'"
    )
    assert "initech" in received[1] and TOKEN not in " ".join(received)
    assert [row["tenant_id"] for row in store.search(EventFilter(), 10)] == ["acme"]


def test_mismatch_log_counts_what_it_held_back(caplog) -> None:
    from receiver.ingest import MismatchLog

    caplog.set_level(logging.WARNING)
    limiter = MismatchLog(interval_seconds=0.0)
    limiter.note("acme", "globex", 2)
    limiter.interval = 3600.0
    limiter.note("acme", "globex", 5)  # held back
    limiter.interval = 0.0
    limiter.note("acme", "globex", 1)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" audit")[0] for line in lines] == ["dropped 2", "dropped 6"]


def test_reasons_drop_record_numbers() -> None:
    message = (
        f"rejected 4 audit log record(s): record 0: {MISMATCH}; record 3: {MISMATCH}; record 5: x; and 1 more"
    )
    assert reasons(message) == [MISMATCH, "x"]
