"""``ingest.ack: journal``: exports acknowledged once fsync'd in the receiver's journal, committed
to the store behind it. The journal's framing and torn-tail recovery on real files; real gRPC,
OTLP/HTTP, admin API and chDB for the rest. The only fake is a store whose INSERT fails on
demand, because "the store is down right now" cannot be produced in-process."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import grpc
import httpx
import pyarrow as pa
import pytest
from admin_seed import ADMIN, ADMIN_TOKENS
from conftest import start_receiver
from google.rpc import error_details_pb2
from otlp_builders import audit_attrs, export, log_record, request

from receiver.filters import EventFilter
from receiver.journal import Journal, JournalError, framing
from receiver.store.base import StoreUnavailable


def _table(n: int, tag: str) -> pa.Table:
    return pa.table({"id": [f"{tag}-{i}" for i in range(n)], "n": list(range(n))})


def _ids(entries) -> list[str]:
    return [i for e in entries for i in e.table.column("id").to_pylist()]


# -- the journal on its own -------------------------------------------------------------------
def test_framing_torn_tail_and_damage_are_skipped_and_truncated(tmp_path: Path):
    journal = Journal(tmp_path, segment_bytes=1 << 20)
    assert journal.open() == []
    for k in range(5):
        journal.append(_table(10, f"r{k}"))
    with pytest.raises(JournalError, match="in use by another receiver"):
        Journal(tmp_path).open()  # one process per journal directory
    journal.close()
    (segment,) = sorted(tmp_path.glob("*.seg"))
    size = segment.stat().st_size

    # a torn tail: a sixth record cut short mid-write (kill -9 / power loss before its fsync,
    # so it was never acknowledged); the five acknowledged ones are intact
    record_size = size // 5
    torn = segment.read_bytes()[:record_size]
    payload = torn[framing.HEADER_SIZE :]
    with open(segment, "ab") as f:
        f.write(framing.header(6, 10, payload, framing.payload_crc(payload)) + payload[:-7])
    journal = Journal(tmp_path)
    recovered = journal.open()
    assert journal.findings == []  # a torn tail is not tampering
    assert _ids(recovered) == [f"r{k}-{i}" for k in range(5) for i in range(10)]
    assert [e.seq for e in recovered] == [1, 2, 3, 4, 5]
    assert segment.stat().st_size == 5 * record_size  # truncated at the last intact record
    entry = journal.append(_table(3, "after"))  # new appends go to a new segment, numbered on
    assert entry.seq == 6 and entry.segment == 2
    journal.close()

    # a flipped payload byte fails the CRC: that record is skipped, the ones after it are kept;
    # a partial header is garbage at the end
    data = bytearray(segment.read_bytes())
    data[1 * record_size + framing.HEADER_SIZE + 40] ^= 0xFF
    segment.write_bytes(bytes(data))
    with open(sorted(tmp_path.glob("*.seg"))[-1], "ab") as f:
        f.write(framing.MAGIC + b"\x01\x02")
    journal = Journal(tmp_path)
    recovered = journal.open()
    kept = [f"r{k}-{i}" for k in (0, 2, 3, 4) for i in range(10)]
    assert _ids(recovered) == [*kept, "after-0", "after-1", "after-2"]
    assert segment.stat().st_size == 5 * record_size  # inner damage: the records after it count
    # record 2 was acknowledged and not yet in the store: its loss is reported
    assert [(f.kind, f.first_seq, f.last_seq) for f in journal.findings] == [("records-missing", 2, 2)]
    # committed entries free their segments; only the fresh current one is left
    journal.committed(recovered)
    assert [p.name for p in sorted(tmp_path.glob("*.seg"))] == [f"{3:020d}.seg"]
    assert journal.bytes_on_disk == 0
    journal.close()
    assert list(tmp_path.glob("*.seg")) == []  # empty current segment removed at close


def test_concurrent_appends_share_fsyncs_and_rotate_by_size(tmp_path: Path, monkeypatch):
    fsyncs: list[int] = []
    real = os.fdatasync

    def counting_fdatasync(fd: int) -> None:
        fsyncs.append(fd)
        time.sleep(0.002)  # a disk's flush takes time: that is what lets appends group
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting_fdatasync)
    journal = Journal(tmp_path, segment_bytes=64 * 1024, max_bytes=1 << 30)
    journal.open()
    entries = []
    lock = threading.Lock()

    def writer(k: int) -> None:
        for j in range(20):
            e = journal.append(_table(50, f"w{k}.{j}"))
            with lock:
                entries.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(entries) == 320
    assert len(fsyncs) < 320 / 2, len(fsyncs)  # grouped: far fewer fsyncs than appends
    segments = sorted(tmp_path.glob("*.seg"))
    assert len(segments) > 3 and all(p.stat().st_size <= 64 * 1024 for p in segments[:-1])
    journal.committed(entries[:100])
    journal.close()
    journal = Journal(tmp_path)
    left = journal.open()
    # whole segments of committed records are gone; what comes back is a superset of the rest
    assert set(_ids(entries[100:])) <= set(_ids(left)) and len(left) < 320
    journal.close()


# -- the receiver in journal mode -------------------------------------------------------------
class FlakyStore:
    """The real store, whose INSERT fails while ``down`` is set."""

    def __init__(self, store) -> None:
        self._store = store
        self.down = threading.Event()
        self.failed = 0

    def insert(self, table) -> None:
        if self.down.is_set():
            self.failed += 1
            raise StoreUnavailable("store is down (injected)")
        self._store.insert(table)

    def __getattr__(self, name):
        return getattr(self._store, name)


def _retry_seconds(err: grpc.RpcError) -> int:
    trailers = dict(err.trailing_metadata())
    return error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay.seconds


def _send(endpoint: str, user: str, n: int = 1) -> list[str]:
    records = [log_record(audit_attrs(enduser__id=user)) for _ in range(n)]
    ids = [next(a.value.string_value for a in r.attributes if a.key == "audit.event.id") for r in records]
    assert export(endpoint, request(records)).partial_success.rejected_log_records == 0
    return ids


def test_store_outage_is_absorbed_then_a_full_journal_pushes_back(store):
    flaky = FlakyStore(store)
    receiver = start_receiver(
        flaky,
        ack="journal",
        admin_tokens=ADMIN_TOKENS,
        ingest={"journal_max_bytes": 96 * 1024, "commit_interval_seconds": 0.05},
    )
    endpoint = f"127.0.0.1:{receiver.grpc_port}"
    admin = httpx.Client(
        base_url=f"http://127.0.0.1:{receiver.admin_port}",
        headers={"authorization": f"Bearer {ADMIN}"},
        timeout=30,
    )
    try:
        acked = _send(endpoint, "before", 3)
        assert receiver.flush(10)
        assert store.count(EventFilter(user="before")) == 3
        flaky.down.set()
        acked += _send(endpoint, "during", 2)  # the store is down: still acknowledged
        assert admin.get("/api/events", params={"user": "before"}).status_code == 200
        deadline = time.monotonic() + 10
        while not flaky.failed and time.monotonic() < deadline:
            time.sleep(0.02)
        assert flaky.failed  # the commit thread tried and keeps the entries
        refused = None
        for k in range(200):  # until the journal is full
            try:
                acked += _send(endpoint, f"fill{k}")
            except grpc.RpcError as err:
                refused = err
                break
        assert refused is not None and refused.code() == grpc.StatusCode.UNAVAILABLE
        assert _retry_seconds(refused) == 1 and "journal holds" in refused.details()
        r = httpx.post(
            f"http://127.0.0.1:{receiver.http_port}/v1/logs",
            content=request([log_record(audit_attrs())]).SerializeToString(),
            headers={"content-type": "application/x-protobuf"},
        )
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        # fail-closed: an admin read that cannot be journaled is not answered
        blocked = admin.get("/api/events")
        assert blocked.status_code == 503 and "cannot be recorded" in blocked.json()["error"]
        metrics = admin.get("/metrics").text
        assert 'otel_audit_refused_requests_total{code="overloaded"} 2.0' in metrics  # gRPC + HTTP

        flaky.down.clear()  # the store is back: the journal drains, in order, once
        assert receiver.flush(30)
        stored = [e["id"] for e in store.search(EventFilter(), 10_000) if e["resource_type"] != "audit_log"]
        assert sorted(stored) == sorted(acked) and len(acked) > 5
        reads = store.search(EventFilter(resource_type="audit_log"), 100)
        assert len(reads) == 1 and reads[0]["user_id"] == "root.admin"  # the answered read's trail event
        acked += _send(endpoint, "after")  # room again
    finally:
        admin.close()
        flaky.down.clear()
        receiver.stop_listeners()
    assert store.count(EventFilter(user="after")) == 1  # shutdown drained the journal


def test_trail_events_and_retries_in_journal_mode(store):
    receiver = start_receiver(store, ack="journal", admin_tokens=ADMIN_TOKENS)
    endpoint = f"127.0.0.1:{receiver.grpc_port}"
    base = f"http://127.0.0.1:{receiver.admin_port}"
    try:
        records = [log_record(audit_attrs(enduser__id="carol")) for _ in range(4)]
        export(endpoint, request(records))
        export(endpoint, request(records))  # a client retry: journaled twice, stored once
        assert receiver.flush(10)
        headers = {"authorization": f"Bearer {ADMIN}"}
        for k in range(3):  # three searches (one search's pages and refreshes are one event)
            answer = httpx.get(
                f"{base}/api/events", params={"user": "carol", "since": f"now-{k + 1}d"}, headers=headers
            )
            assert answer.status_code == 200 and len(answer.json()["events"]) == 4
        assert receiver.flush(10)
        reads = store.search(EventFilter(resource_type="audit_log", event_name="audit.audit_log.read"), 100)
        assert len(reads) == 3 and {e["user_id"] for e in reads} == {"root.admin"}
        metrics = httpx.get(f"{base}/metrics").text
        assert "otel_audit_accepted_events_total 7.0" in metrics
        assert "otel_audit_duplicate_events_total 4.0" in metrics
        assert "otel_audit_writer_queue_rows 0.0" in metrics
        journal_dir = Path(store.path) / "journal" / store.database
        assert (journal_dir / "LOCK").exists()
    finally:
        receiver.stop_listeners()


# -- kill -9 of `serve` -----------------------------------------------------------------------
def _metric(serve, name: str) -> float:
    """A counter from /metrics (not an audited read: polling it adds no trail events)."""
    for line in httpx.get(f"{serve.admin_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _wait_metric(serve, name: str, value: float, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while (found := _metric(serve, name)) < value and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def test_kill_9_after_acknowledged_exports_then_restart_stores_each_once(tmp_path: Path):
    from conftest import ServeProcess
    from delivery_support import stored_ids
    from test_integrity_cli import run_cli

    config = tmp_path / "otel-audit.yaml"
    config.write_text("ingest: {commit_interval_seconds: 3.0}\n")
    serve = ServeProcess(tmp_path / "data", ("--config", str(config)), ack=None)  # the default: journal
    try:
        serve.start()
        early = _send(serve.grpc_endpoint, "early", 20)
        # committed to the store, and still in the journal's (small, current) segment
        assert _wait_metric(serve, "otel_audit_accepted_events_total", 20) == 20
        late = _send(serve.grpc_endpoint, "late", 30) + _send(serve.grpc_endpoint, "late", 30)
        serve.kill()  # well inside the 3 s commit interval: "late" is only in the journal
        journal = tmp_path / "data" / "journal"
        segment = max(journal.glob("*.seg"))
        with open(segment, "ab") as f:  # and a record torn mid-write, never acknowledged
            f.write(framing.MAGIC + b"\x00\x10\x00\x00torn")

        serve.start()
        assert _wait_metric(serve, "otel_audit_accepted_events_total", 60) == 60
        assert _metric(serve, "otel_audit_duplicate_events_total") == 20  # "early" replayed, dropped
        assert serve.stop() == 0
    finally:
        serve.stop()
    ids = stored_ids(tmp_path / "data")
    assert sorted(ids) == sorted(early + late)  # every acknowledged event, exactly once
    assert list(journal.glob("*.seg")) == []  # drained and removed at shutdown
    verified = run_cli("verify", "--store", f"chdb://{tmp_path / 'data'}")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "acme: 80 events" in verified.stdout and "intact" in verified.stdout


def test_real_store_write_fault_is_absorbed_by_the_journal(tmp_path: Path):
    from conftest import ServeProcess
    from delivery_support import stored_ids
    from test_delivery_faults import _break_table, _mend_table
    from test_integrity_cli import run_cli

    serve = ServeProcess(tmp_path / "data", ack="journal")
    try:
        serve.start()
        acked = _send(serve.grpc_endpoint, "before", 5)
        assert _wait_metric(serve, "otel_audit_accepted_events_total", 5) == 5
        table_dir, aside = _break_table(serve.data_dir)  # the engine cannot write a new part
        try:
            for k in range(3):  # acknowledged all the same: they are in the journal
                acked += _send(serve.grpc_endpoint, f"during{k}", 10)
            assert _wait_metric(serve, "otel_audit_store_commit_errors_total", 2) >= 2
            assert _metric(serve, "otel_audit_writer_queue_rows") == 30
        finally:
            _mend_table(table_dir, aside)
        assert _wait_metric(serve, "otel_audit_accepted_events_total", 35) == 35
        assert serve.stop() == 0
    finally:
        serve.stop()
    assert sorted(stored_ids(tmp_path / "data")) == sorted(acked)
    verified = run_cli("verify", "--store", f"chdb://{tmp_path / 'data'}")
    assert verified.returncode == 0 and "acme: 35 events" in verified.stdout, (
        verified.stdout + verified.stderr
    )
