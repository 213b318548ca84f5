"""``ingest.ack: journal``: a batch the store rejects for good does not block the journal. The
good rows are stored (hash chain intact), the rows the engine refuses alone go to the quarantine
with its error, and a transient failure is still retried without quarantining anything. Real
gRPC, real chDB: the only injected fault is how a poison row reaches the engine — its id is
turned into text the real engine cannot parse as a UUID, so the rejection (and its error code)
is the engine's own."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from conftest import start_receiver
from otlp_builders import audit_attrs, export, log_record, request

from receiver.cli import main as cli
from receiver.filters import EventFilter
from receiver.integrity.verify import verify_store
from receiver.journal import quarantine
from receiver.store.base import StoreUnavailable
from receiver.store.errors import is_rejection
from receiver.store.sql import Statement


class FlakyStore:
    """The real store, whose INSERT fails with StoreUnavailable while ``down`` is set."""

    def __init__(self, store) -> None:
        self._store = store
        self.down = threading.Event()
        self.inserts = 0
        self.failed = 0

    def insert(self, table: pa.Table) -> None:
        self.inserts += 1
        if self.down.is_set():
            self.failed += 1
            raise StoreUnavailable("store is down (injected)")
        self._store.insert(table)

    def __getattr__(self, name):
        return getattr(self._store, name)


def _constraint(store, action: str) -> None:
    """A CHECK constraint on the test database's events table: the real engine then refuses
    every insert holding a row of user "mallory" (VIOLATED_CONSTRAINT)."""
    text = (
        "ALTER TABLE {db}.audit_events ADD CONSTRAINT no_mallory CHECK user_id != 'mallory'"
        if action == "add"
        else "ALTER TABLE {db}.audit_events DROP CONSTRAINT no_mallory"
    )
    store._command(Statement(text.replace("{db}", store.database)))


def _records(n: int, user: str) -> tuple[list, list[str]]:
    records = [log_record(audit_attrs(enduser__id=user)) for _ in range(n)]
    ids = [next(a.value.string_value for a in r.attributes if a.key == "audit.event.id") for r in records]
    return records, ids


def _metric(port: int, name: str) -> float:
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {name}")


def test_poison_rows_are_quarantined_and_the_rest_stored_with_an_intact_chain(store, caplog, capsys):
    _constraint(store, "add")
    wrapped = FlakyStore(store)
    receiver = start_receiver(wrapped, ack="journal", ingest={"commit_interval_seconds": 30.0})
    endpoint = f"127.0.0.1:{receiver.grpc_port}"
    try:
        acked: list[str] = []
        poison: set[str] = set()
        for k in range(6):  # six requests, held back by the interval: one batch at flush()
            records, ids = _records(50, f"user{k}")
            # one poison row alone in one request, two side by side in another
            for i in {1: [3], 3: [20, 21]}.get(k, []):
                records[i] = log_record(audit_attrs(enduser__id="mallory", audit__event__id=ids[i]))
                poison.add(ids[i])
            assert export(endpoint, request(records)).partial_success.rejected_log_records == 0
            acked += ids
        with caplog.at_level("ERROR", logger="otel_audit.receiver"):
            assert receiver.flush(60)
        stored = {e["id"] for e in store.search(EventFilter(), 1000)}
        assert stored == set(acked) - poison  # every good row of the batch is in the store
        port = receiver.admin_port
        assert _metric(port, "otel_audit_quarantined_events_total") == 3
        assert _metric(port, "otel_audit_accepted_events_total") == 297
        assert _metric(port, "otel_audit_writer_queue_rows") == 0  # the journal drained
        errors = [r for r in caplog.records if "quarantined" in r.getMessage()]
        assert len(errors) == 1 and "3 of 300 events" in errors[0].getMessage()  # once per batch

        files = receiver._writer.quarantine.files()
        assert (
            len(files) == 1
            and files[0].parent == Path(store.path) / "journal" / store.database / "quarantine"
        )
        held = quarantine.read(files[0])
        assert sorted(held.column("id").to_pylist()) == sorted(poison)
        errors_held = held.column(quarantine.ERROR_COLUMN).to_pylist()
        assert all("Code: 469" in e and "no_mallory" in e for e in errors_held), errors_held[0]
        assert held.schema.metadata[b"otel_audit.journal_records"] == b"1,2,3,4,5,6"
        assert "chain_id" not in held.column_names  # as journaled: replay assigns the chain
        # the batch was split: far fewer inserts than rows
        assert wrapped.inserts < 40

        # the chain was assigned per committed piece: seq without gaps, hashes linked
        (report,) = verify_store(store, tenants=("acme",))
        assert report.events == 297 and report.damage is None, report.summary()

    finally:
        receiver.stop_listeners()

    # the operator lists the quarantine, fixes the cause and replays it (receiver stopped)
    journal = Path(store.path) / "journal" / store.database
    assert cli(["quarantine", "list", "--journal", str(journal)]) == 0
    listed = capsys.readouterr().out
    assert f"{files[0].name}: 3 events" in listed and "Code: 469" in listed
    _constraint(store, "drop")
    assert cli(["quarantine", "replay", "--journal", str(journal)]) == 0
    assert "3 events back in the journal" in capsys.readouterr().out
    assert not files[0].exists() and (journal / "quarantine" / "replayed" / files[0].name).exists()
    receiver = start_receiver(store, ack="journal")  # the next start commits them
    try:
        assert receiver.flush(30)
        assert {e["id"] for e in store.search(EventFilter(), 1000)} == set(acked)
        (report,) = verify_store(store, tenants=("acme",))
        assert report.events == 300 and report.damage is None, report.summary()
    finally:
        receiver.stop_listeners()


def test_transient_failure_is_retried_not_quarantined(store):
    wrapped = FlakyStore(store)
    receiver = start_receiver(wrapped, ack="journal", ingest={"commit_interval_seconds": 0.05})
    endpoint = f"127.0.0.1:{receiver.grpc_port}"
    try:
        wrapped.down.set()
        records, ids = _records(20, "bob")
        export(endpoint, request(records))
        deadline = time.monotonic() + 10
        while wrapped.failed < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert wrapped.failed >= 2  # retried with backoff, still in the journal
        assert store.count(EventFilter(user="bob")) == 0
        wrapped.down.clear()
        assert receiver.flush(30)
        assert store.count(EventFilter(user="bob")) == 20
        assert _metric(receiver.admin_port, "otel_audit_quarantined_events_total") == 0
        assert receiver._writer.quarantine.files() == []
    finally:
        receiver.stop_listeners()


def test_classification_and_bisection_budget():
    from receiver.store.chdb_store import _classify

    assert not is_rejection(_classify(RuntimeError("Code: 241. DB::Exception: Memory limit exceeded")))
    assert not is_rejection(StoreUnavailable("Code: 53. but the store said retry"))
    assert not is_rejection(RuntimeError("something unknown"))  # unknown: retried, never quarantined
    assert is_rejection(RuntimeError("Code: 376. DB::Exception: Cannot parse uuid"))
    assert is_rejection(pa.ArrowInvalid("Could not convert 'x' with type str"))
    try:  # a record journaled by an older version lacks a column the chain needs
        pa.table({"id": ["a"]}).column("chain_id")
    except KeyError as exc:
        assert is_rejection(exc)
    assert not is_rejection(KeyError("chain_id"))  # a plain KeyError is a bug: retried

    table = pa.table({"id": [str(i) for i in range(1000)]})
    committed: list[str] = []
    bad = {"17", "500"}

    def commit(piece: pa.Table) -> None:
        ids = piece.column("id").to_pylist()
        if bad.intersection(ids):
            raise RuntimeError("Code: 53. DB::Exception: Type mismatch")
        committed.extend(ids)

    rejected = quarantine.isolate(table, RuntimeError("Code: 53."), commit, is_rejection)
    assert [r.table.column("id").to_pylist() for r in rejected] == [["17"], ["500"]]
    assert committed == [str(i) for i in range(1000) if str(i) not in bad]  # in order

    def refuse_all(piece: pa.Table) -> None:
        raise RuntimeError("Code: 16. DB::Exception: No such column")

    rejected = quarantine.isolate(table, RuntimeError("Code: 16."), refuse_all, is_rejection, max_failed=8)
    assert sum(r.table.num_rows for r in rejected) == 1000 and len(rejected) <= 9  # bounded, nothing lost

    def outage(piece: pa.Table) -> None:
        raise StoreUnavailable("gone")

    with pytest.raises(StoreUnavailable):
        quarantine.isolate(table, RuntimeError("Code: 53."), outage, is_rejection)


def test_records_journaled_with_an_older_schema_are_quarantined_whole_at_replay(store):
    """A record whose table lacks a column the chain needs (written by an older version) cannot
    be stored however it is split: it is quarantined within the budget of failed inserts, the
    records around it are stored, and the journal drains."""
    from receiver import pipeline
    from receiver.journal import Journal
    from receiver.pipeline.auth import OPEN

    def table(user: str, n: int) -> tuple[pa.Table, list[str]]:
        records, ids = _records(n, user)
        return pipeline.run(request(records), OPEN, lambda _t: 365).table, ids

    journal_dir = Path(store.path) / "journal" / store.database
    journal = Journal(journal_dir)
    journal.open()
    good, good_ids = table("current", 20)
    old, old_ids = table("older", 300)
    journal.append(good)
    journal.append(old.drop_columns(["session_id"]))  # as an older version journaled it
    journal.close()

    receiver = start_receiver(store, ack="journal")  # recovers both records and commits them
    try:
        assert receiver.flush(30)
        assert {e["id"] for e in store.search(EventFilter(), 1000)} == set(good_ids)
        assert _metric(receiver.admin_port, "otel_audit_quarantined_events_total") == 300
        (path,) = receiver._writer.quarantine.files()
        held = quarantine.read(path)
        assert sorted(held.column("id").to_pylist()) == sorted(old_ids)
        assert "session_id" not in held.column_names
        assert "does not exist in schema" in held.column(quarantine.ERROR_COLUMN)[0].as_py()
        (report,) = verify_store(store, tenants=("acme",))
        assert report.events == 20 and report.damage is None, report.summary()
    finally:
        receiver.stop_listeners()
    assert list(journal_dir.glob("*.seg")) == []  # drained
