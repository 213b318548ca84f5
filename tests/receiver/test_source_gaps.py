"""Source-side gap detection end to end: the real emitter (OTel SDK, OTLP/gRPC exporter) → the real
receiver → chDB; events dropped between emission and export are reported by /api/verify, the
compliance summary and `otel-audit verify`, exactly those; a tail still in flight, duplicates
and a spool replay are not gaps. Journal findings reach the same reports until acknowledged."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from admin_seed import ADMIN, ADMIN_TOKENS
from conftest import free_port, start_receiver
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

import otel_audit
from otel_audit import attributes as attr
from otel_audit.config import resolve_settings
from otel_audit.exporter import build_otlp_exporter
from otel_audit.source import SOURCE
from receiver.config import load_config
from receiver.filters import EventFilter
from receiver.journal import Journal
from receiver.journal.record import acknowledge
from receiver.server import Receiver
from receiver.sources.gaps import source_gaps


class DropSeqs(LogRecordProcessor):
    """A filtering processor between the emitter and the batch exporter: loses these numbers."""

    def __init__(self, inner: LogRecordProcessor, drop: set[tuple[str, int]]) -> None:
        self.inner, self.drop = inner, drop

    def on_emit(self, log_record) -> None:
        attrs = log_record.log_record.attributes
        if (attrs[attr.TENANT_ID], attrs[attr.SOURCE_SEQ]) not in self.drop:
            self.inner.on_emit(log_record)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _verify(receiver) -> dict:
    r = httpx.get(
        f"http://127.0.0.1:{receiver.admin_port}/api/verify",
        headers={"authorization": f"Bearer {ADMIN}"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def gap_receiver(store):
    r = start_receiver(store, admin_tokens=ADMIN_TOKENS, sources={"gap_grace_seconds": 0})
    yield r
    r.stop_listeners()


def test_dropped_events_are_reported_exactly(gap_receiver, store):
    SOURCE.reset()
    # 29, 30: the tail, indistinguishable from "not sent yet"; globex's events all arrive
    drop = {("acme", seq) for seq in (5, 6, 7, 20, 29, 30)}
    settings = resolve_settings(endpoint=f"http://127.0.0.1:{gap_receiver.grpc_port}", service_name="gap-svc")
    provider = LoggerProvider(resource=Resource.create({"service.name": "gap-svc"}))
    provider.add_log_record_processor(DropSeqs(BatchLogRecordProcessor(build_otlp_exporter(settings)), drop))
    otel_audit.configure(logger_provider=provider)
    try:
        for i in range(30):
            otel_audit.record(action="read", resource_type="doc", resource_id=f"d{i}", tenant_id="acme")
            if i % 3 == 0:
                otel_audit.record(action="read", resource_type="doc", resource_id=f"g{i}", tenant_id="globex")
        assert provider.force_flush()
    finally:
        otel_audit.shutdown()
        provider.shutdown()
    assert store.count(EventFilter()) == 24 + 10
    source = f"{SOURCE.id}.0"  # the process's numbering for its first tenant, acme
    expected = f"4 event(s) sent by source {source} (service gap-svc) never arrived (seq 5..7, 20)"

    report = _verify(gap_receiver)
    assert report["findings"] == [
        {
            "tenant": "acme",
            "kind": "source-gap",
            "detail": expected,
            "missing": 4,
            "first_seq": 5,
            "last_seq": 20,
            "id": source,
        }
    ]
    compliance = httpx.get(
        f"http://127.0.0.1:{gap_receiver.admin_port}/api/compliance",
        params={"tenant": "acme"},
        headers={"authorization": f"Bearer {ADMIN}"},
        timeout=60,
    ).json()
    assert [f["detail"] for f in compliance["findings"]] == [expected]
    other = httpx.get(
        f"http://127.0.0.1:{gap_receiver.admin_port}/api/compliance",
        params={"tenant": "globex"},
        headers={"authorization": f"Bearer {ADMIN}"},
        timeout=60,
    ).json()
    assert other["findings"] == []

    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "receiver.cli",
            "verify",
            "--server",
            f"http://127.0.0.1:{gap_receiver.admin_port}",
        ],
        env={**os.environ, "OTEL_AUDIT_TOKEN": ADMIN},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert f"acme: source-gap: {expected}" in cli.stdout.splitlines()

    # within the grace period nothing is a gap yet (events may still be in a spool)
    now = dt.datetime.now(dt.UTC)
    assert source_gaps(store, None, now, dt.timedelta(minutes=15)) == []


class Twice:
    """An exporter that delivers every batch twice (a retry after a lost acknowledgement)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def export(self, batch):
        self.inner.export(batch)
        return self.inner.export(batch)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def test_spool_replay_and_duplicates_are_not_gaps(tmp_path: Path, store):
    """The receiver is away: the first events wait in the disk spool and are replayed with their
    original numbers behind later ones; every batch is also delivered twice."""
    SOURCE.reset()
    port = free_port()
    handle = otel_audit.configure(
        endpoint=f"http://127.0.0.1:{port}", service_name="spool-svc", timeout=1, spool_dir=tmp_path / "spool"
    )
    spooling = handle.exporter
    spooling._inner = Twice(spooling._inner)  # type: ignore[union-attr]
    receiver = None
    try:
        with otel_audit.audit_context(user_id="alice", tenant_id="acme"):
            for i in range(20):
                otel_audit.record(action="read", resource_type="doc", resource_id=f"d{i}")
        otel_audit.force_flush()
        _wait(lambda: spooling.snapshot().spooled_events == 20)  # type: ignore[union-attr]
        cfg = load_config(
            None,
            grpc_listen=f"127.0.0.1:{port}",
            http_listen="127.0.0.1:0",
            admin_listen="127.0.0.1:0",
            ack="store",
            admin_tokens=ADMIN_TOKENS,
            sources={"gap_grace_seconds": 0},
        )
        receiver = Receiver(cfg, store=store)
        receiver.start()
        with otel_audit.audit_context(user_id="alice", tenant_id="acme"):
            for i in range(20, 30):
                otel_audit.record(action="read", resource_type="doc", resource_id=f"d{i}")
        otel_audit.force_flush()
        _wait(lambda: store.count(EventFilter()) == 30)
        _wait(lambda: len(spooling.spool) == 0)  # type: ignore[union-attr]
        assert _verify(receiver)["findings"] == []
        seqs = sorted(int(r["attributes"][attr.SOURCE_SEQ]) for r in store.search(EventFilter(), 100))
        assert seqs == list(range(1, 31))
    finally:
        otel_audit.shutdown()
        if receiver is not None:
            receiver.stop_listeners()


def test_journal_findings_are_reported_until_acknowledged(tmp_path: Path, store):
    """Acknowledged records cut from the journal while the receiver was down: counted in
    /metrics, reported by /api/verify until an operator acknowledges them."""
    journal_dir = tmp_path / "journal"
    journal = Journal(journal_dir)
    journal.open()
    for k in range(3):
        journal.append(pa.table({"id": [f"x{k}"]}))
    journal.close()
    (segment,) = journal_dir.glob("*.seg")
    os.truncate(segment, 0)

    receiver = start_receiver(
        store, ack="journal", ingest={"journal_dir": str(journal_dir)}, admin_tokens=ADMIN_TOKENS
    )
    try:
        metrics = httpx.get(f"http://127.0.0.1:{receiver.admin_port}/metrics", timeout=30).text
        assert "otel_audit_journal_tamper_findings_total 1.0" in metrics
        (finding,) = _verify(receiver)["findings"]
        assert finding["tenant"] == "*" and finding["kind"] == "journal-records-missing"
        assert (finding["records"], finding["first_seq"], finding["last_seq"]) == (3, 1, 3)
        assert "journal seq 1..3" in finding["detail"]
        acknowledge(store, [finding["id"]], "ops.oncall", "INC-42: disk replaced, events re-sent by the app")
        assert _verify(receiver)["findings"] == []
    finally:
        receiver.stop_listeners()
    # a restart does not report it again (the outbox entry is already in the store)
    receiver = start_receiver(
        store, ack="journal", ingest={"journal_dir": str(journal_dir)}, admin_tokens=ADMIN_TOKENS
    )
    try:
        assert _verify(receiver)["findings"] == []
    finally:
        receiver.stop_listeners()
