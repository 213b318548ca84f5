"""The emitter's on-disk spool: lossless round trip of SDK records, in-order replay, the size bound,
restart, shared directories, and delivery to a real receiver that comes up late."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Sequence

from delivery_support import start_receiver
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource

import otel_audit
from otel_audit.spool import SpoolingExporter
from otel_audit.spool_codec import decode_batch, encode_batch
from receiver.filters import EventFilter


class Switchable(LogRecordExporter):
    """A stand-in receiver that can be down (the fault) or up (keeps what it gets, in order)."""

    def __init__(self, up: bool = False) -> None:
        self.up = up
        self.got: list[list[str]] = []
        self.attempts = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.attempts += 1
        if not self.up:
            return LogRecordExportResult.FAILURE
        self.got.append([str(item.log_record.body) for item in batch])
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def sdk_records(n: int, start: int = 0) -> list[ReadableLogRecord]:
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "spool-test", "k8s.pod": "p-1"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("spool.scope", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.21.0")
    for i in range(start, start + n):
        logger.emit(
            event_name="audit.document.read",
            timestamp=1_764_115_200_123_456_789 + i,
            body=f"event-{i}",
            severity_text="INFO",
            attributes={
                "audit.event.id": str(uuid.uuid4()),
                "i": i,
                "ratio": 0.5,
                "ok": True,
                "raw": b"\x00\xff",
                "tags": ("a", "b"),
                "changes": {"amount": {"old": 1, "new": [2, 3]}},
            },
        )
    provider.shutdown()
    return list(memory.get_finished_logs())


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_codec_round_trip_is_lossless_on_the_wire():
    records = sdk_records(5)
    again = decode_batch(encode_batch(records))
    assert encode_logs(again) == encode_logs(records)


def test_down_then_up_replays_every_batch_in_order(tmp_path):
    inner = Switchable(up=False)
    spooling = SpoolingExporter(inner, tmp_path, max_backoff_s=0.2)
    try:
        for i in range(5):
            assert spooling.export(sdk_records(2, start=2 * i)) == LogRecordExportResult.SUCCESS
        assert len(spooling.spool) == 5 and inner.got == []
        assert inner.attempts >= 1
        inner.up = True
        wait_for(lambda: len(spooling.spool) == 0)
        # a batch after recovery goes straight through, behind the replayed ones
        spooling.export(sdk_records(1, start=10))
        flat = [body for batch in inner.got for body in batch]
        assert flat == [f"event-{i}" for i in range(11)]
        assert spooling.snapshot().replayed_events == 10 and spooling.snapshot().dropped_events == 0
    finally:
        spooling.shutdown()


def test_full_spool_drops_new_batches_with_a_clear_log_line(tmp_path, caplog):
    inner = Switchable(up=False)
    spooling = SpoolingExporter(inner, tmp_path, max_bytes=64 * 1024, max_backoff_s=0.2)
    try:
        with caplog.at_level(logging.ERROR, logger="otel_audit.spool"):
            results = [spooling.export(sdk_records(20, start=20 * i)) for i in range(30)]
        assert LogRecordExportResult.FAILURE in results
        stats = spooling.snapshot()
        assert stats.pending_bytes <= 64 * 1024 and stats.dropped_events > 0
        assert stats.spooled_events + stats.dropped_events == 600
        (line,) = [r.getMessage() for r in caplog.records if "spool full" in r.getMessage()]
        assert str(tmp_path) in line and "dropped" in line
    finally:
        spooling.shutdown()


def test_spool_survives_a_restart_and_is_replayed_first(tmp_path):
    first = SpoolingExporter(Switchable(up=False), tmp_path, max_backoff_s=0.2)
    first.export(sdk_records(3))
    first.shutdown()  # the receiver stayed down: the batch stays on disk
    assert len(list(tmp_path.rglob("*.batch"))) == 1
    inner = Switchable(up=True)
    second = SpoolingExporter(inner, tmp_path, max_backoff_s=0.2)
    try:
        wait_for(lambda: len(second.spool) == 0)
        assert inner.got == [["event-0", "event-1", "event-2"]]
    finally:
        second.shutdown()


def test_processes_sharing_a_directory_get_their_own_slot_and_adopt_orphans(tmp_path):
    a = SpoolingExporter(Switchable(up=False), tmp_path, max_backoff_s=0.2)
    b = SpoolingExporter(Switchable(up=False), tmp_path, max_backoff_s=0.2)
    assert a.spool.dir != b.spool.dir
    b.export(sdk_records(2))
    b.shutdown()
    a.shutdown()
    inner = Switchable(up=True)
    c = SpoolingExporter(inner, tmp_path, max_backoff_s=0.2)  # takes slot-0, adopts slot-1
    try:
        wait_for(lambda: len(c.spool) == 0)
        assert inner.got == [["event-0", "event-1"]]
    finally:
        c.shutdown()


def test_configured_app_spools_while_the_receiver_is_missing_then_delivers(tmp_path, store):
    port = free_port()
    handle = otel_audit.configure(
        endpoint=f"http://127.0.0.1:{port}", service_name="late-rx", timeout=1, spool_dir=tmp_path / "spool"
    )
    try:
        with otel_audit.audit_context(user_id="alice", tenant_id="acme"):
            ids = [
                otel_audit.record(action="read", resource_type="doc", resource_id=f"d{i}") for i in range(20)
            ]
        otel_audit.force_flush()
        spooling = handle.exporter
        assert isinstance(spooling, SpoolingExporter)
        wait_for(lambda: spooling.snapshot().spooled_events == 20)
        assert store.count(EventFilter()) == 0
        receiver = start_receiver(store, grpc_listen=f"127.0.0.1:{port}")
        try:
            wait_for(lambda: store.count(EventFilter()) == 20, timeout=60)
            assert sorted(r["id"] for r in store.search(EventFilter(), 100)) == sorted(ids)
            wait_for(lambda: len(spooling.spool) == 0)
        finally:
            otel_audit.shutdown()
            receiver.stop_listeners()
    finally:
        otel_audit.shutdown()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
