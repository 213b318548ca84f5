"""Positions on the receiver's disk with the embedded store (issue 18, fourth round): an insert
into chDB costs 8–10 ms of CPU, so a stream writes its positions to a file after every batch
and to the store every few seconds; whoever reads them takes the later of the two, and a replay
makes older files stop counting. Real OTLP into real chDB, real loopback webhooks; the spy only
counts the real store's inserts."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import start_receiver
from prometheus_client import CollectorRegistry
from stream_support import HttpCollector, StoreSpy, send_events, stored_order, wait_for

from receiver.store import streams_sql as q
from receiver.streams import bookkeeping
from receiver.streams.config import Stream
from receiver.streams.metrics import StreamMetrics
from receiver.streams.positions import PositionFile, local_directory
from receiver.streams.runner import Runner
from receiver.streams.service import Streams, offline_status

FAST = {"poll_seconds": 0.05, "batch_seconds": 0, "retry_initial_seconds": 0.2, "retry_max_seconds": 1}


@pytest.fixture
def collector():
    c = HttpCollector()
    yield c
    c.close()


def ids(collector: HttpCollector) -> list[str]:
    return [json.loads(line)["id"] for body in collector.bodies() for line in body.splitlines()]


def _stream(url: str, **extra: object) -> Stream:
    return Stream(name="siem", kind="webhook", url=url, secret="k", batch_size=3, **{**FAST, **extra})


def _runner(store, url: str, **extra: object) -> Runner:
    stream = _stream(url, **extra)
    file = PositionFile(local_directory(store), stream.name)
    return Runner(store, stream, StreamMetrics(CollectorRegistry()), "test", position_file=file)


def _store_positions(store) -> dict[str, int]:
    rows = store.query_table(q.positions(store.database, "siem")).to_pylist()
    return {r["log"]: int(r["next"]) for r in rows}


def _fill(store, tenants: dict[str, int]) -> list[str]:
    receiver = start_receiver(store)
    try:
        return [
            i
            for tenant, n in tenants.items()
            for i in send_events(f"127.0.0.1:{receiver.grpc_port}", tenant, n)
        ]
    finally:
        receiver.stop_listeners()


def test_each_batch_goes_to_the_file_and_the_store_gets_them_every_few_seconds(store, collector, monkeypatch):
    monkeypatch.setattr(bookkeeping, "STORE_POSITIONS_EVERY_SECONDS", 3600.0)
    _fill(store, {"acme": 10})
    spy = StoreSpy(store)
    runner = _runner(spy, collector.base)
    while runner.step():
        pass
    assert ids(collector) == stored_order(store)
    batches = len(collector.accepted)
    assert batches == 4  # 10 events, 3 a batch
    # one store insert (the first save); every batch's position is in the file
    assert spy.position_inserts() == 1
    (log,) = runner.positions
    saved = runner.position_file.read()
    assert saved is not None and saved.positions == {log: runner.positions[log]}
    assert _store_positions(store)[log] < runner.positions[log]
    assert runner.load_positions() == runner.positions  # the later of store and file
    runner.stop()  # a stop stores them (and closes the sink)
    assert _store_positions(store) == runner.positions


def test_a_restart_after_a_crash_resumes_from_the_file_without_resending(store, collector, monkeypatch):
    monkeypatch.setattr(bookkeeping, "STORE_POSITIONS_EVERY_SECONDS", 3600.0)
    first = _fill(store, {"acme": 9})
    crashed = _runner(store, collector.base)
    while crashed.step():
        pass
    crashed.sink.close()  # no stop(): the store holds only the first batch's position
    assert _store_positions(store) != crashed.positions
    later = _fill(store, {"acme": 4})
    restarted = _runner(store, collector.base)
    try:
        while restarted.step():
            pass
        assert ids(collector) == first + later  # nothing twice, nothing lost, in order
        # the file's positions reached the store at the restarted runner's first save
        (log,) = crashed.positions
        assert crashed.positions[log] < _store_positions(store)[log] <= restarted.positions[log]
    finally:
        restarted.sink.close()


def test_without_the_file_the_store_decides_and_a_lost_file_costs_only_duplicates(
    store, collector, monkeypatch
):
    monkeypatch.setattr(bookkeeping, "STORE_POSITIONS_EVERY_SECONDS", 3600.0)
    first = _fill(store, {"acme": 9})
    runner = _runner(store, collector.base)
    while runner.step():
        pass
    runner.sink.close()
    runner.position_file.path.unlink()
    again = _runner(store, collector.base)
    try:
        while again.step():
            pass
        delivered = ids(collector)
        assert delivered[:9] == first and delivered[9:] == first[3:]  # resent from the store's position
    finally:
        again.sink.close()


def test_a_replay_counts_the_files_positions_and_then_makes_the_file_stale(store, collector, monkeypatch):
    monkeypatch.setattr(bookkeeping, "STORE_POSITIONS_EVERY_SECONDS", 3600.0)
    acme = _fill(store, {"acme": 6})
    cut = dt.datetime.now(dt.timezone.utc)
    globex = _fill(store, {"globex": 6})
    streams = Streams(store, (_stream(collector.base),), lambda request: None, CollectorRegistry(), "test")
    runner = streams.runners["siem"]
    while runner.step():
        pass
    assert ids(collector) == stored_order(store)
    before = dict(runner.positions)
    assert _store_positions(store) != before  # the file is ahead of the store
    # globex's events from the cut are sent again; acme's log (all before the cut) keeps its position
    result = streams.replay("siem", cut, "admin")
    assert list(result["positions"]) == [log for log in before if "/globex/" in log]
    stored = _store_positions(store)
    assert {k: v for k, v in stored.items() if "/acme/" in k} == {
        k: v for k, v in before.items() if "/acme/" in k
    }
    while runner.step():
        pass
    assert ids(collector)[12:] == globex  # only globex's events again
    assert len(ids(collector)) == 12 + len(globex) and set(acme) <= set(ids(collector)[:12])
    runner.sink.close()


def test_status_shows_the_files_positions_with_the_receiver_stopped(store, collector, monkeypatch):
    monkeypatch.setattr(bookkeeping, "STORE_POSITIONS_EVERY_SECONDS", 3600.0)
    _fill(store, {"acme": 7})
    runner = _runner(store, collector.base)
    while runner.step():
        pass
    runner.sink.close()
    (status,) = offline_status(store, (_stream(collector.base),))
    assert status["positions"] == runner.positions and status["lag_events"] == 0


def test_a_receivers_stream_writes_its_file_under_the_data_directory(store, collector):
    receiver = start_receiver(
        store,
        streams=[
            {"name": "siem", "kind": "webhook", "url": collector.base, "secret": "k", "batch_size": 3, **FAST}
        ],
    )
    try:
        sent = send_events(f"127.0.0.1:{receiver.grpc_port}", "acme", 5)
        wait_for(lambda: len(ids(collector)) >= 5, what="delivery")
        runner = receiver.streams.runners["siem"]
        assert runner.position_file is not None
        assert runner.position_file.path.parent == local_directory(store)
        assert str(runner.position_file.path).startswith(store.path)
        wait_for(lambda: sum(runner.position_file.read().positions.values()) == len(sent), what="the file")
    finally:
        receiver.stop_listeners()


def test_a_position_file_that_cannot_be_written_sends_the_positions_to_the_store(
    store, collector, monkeypatch
):
    monkeypatch.setattr(bookkeeping, "STORE_POSITIONS_EVERY_SECONDS", 3600.0)
    first = _fill(store, {"acme": 9})
    runner = _runner(store, collector.base)
    runner.position_file.path.mkdir(parents=True)  # a directory where the file goes: every write fails
    try:
        while runner.step():
            pass
        assert ids(collector) == first  # each batch once: its position reached the store instead
        assert _store_positions(store) == runner.positions
        later = _fill(store, {"acme": 2})
        restarted = _runner(store, collector.base)
        while restarted.step():
            pass
        assert ids(collector) == first + later
        restarted.sink.close()
    finally:
        runner.sink.close()
