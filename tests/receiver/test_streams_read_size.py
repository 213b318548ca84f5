"""A read takes several batches (issue 18, fourth round): a query costs milliseconds whatever it
returns, so a stream with small batches reads about READ_EVENTS events at once and delivers them
a batch at a time, in order, each batch's position saved once it is accepted; a refused batch
holds back the rest of its read. Real OTLP into real chDB, a real loopback webhook."""

from __future__ import annotations

import json

import pytest
from conftest import start_receiver
from prometheus_client import CollectorRegistry
from stream_support import HttpCollector, StoreSpy, send_events, stored_order, wait_for

from receiver.streams import reads
from receiver.streams.config import Stream
from receiver.streams.metrics import StreamMetrics
from receiver.streams.positions import PositionFile, local_directory
from receiver.streams.runner import Runner

FAST = {"poll_seconds": 0.05, "batch_seconds": 0, "retry_initial_seconds": 0.2, "retry_max_seconds": 0.5}


@pytest.fixture
def collector():
    c = HttpCollector()
    yield c
    c.close()


@pytest.fixture
def filled(store) -> list[str]:
    receiver = start_receiver(store)
    try:
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        return send_events(grpc, "acme", 20) + send_events(grpc, "globex", 5)
    finally:
        receiver.stop_listeners()


def ids(collector: HttpCollector) -> list[str]:
    return [json.loads(line)["id"] for body in collector.bodies() for line in body.splitlines()]


def _runner(store, url: str) -> Runner:
    stream = Stream(name="siem", kind="webhook", url=url, secret="k", batch_size=3, **FAST)
    file = PositionFile(local_directory(store), stream.name)
    return Runner(store, stream, StreamMetrics(CollectorRegistry()), "test", position_file=file)


def test_a_read_takes_several_batches_and_delivers_them_in_order(store, collector, filled, monkeypatch):
    monkeypatch.setattr(reads, "READ_EVENTS", 12)
    spy = StoreSpy(store)
    runner = _runner(spy, collector.base)
    assert runner.read_size == 12
    try:
        while runner.step():
            pass
        assert ids(collector) == stored_order(store) and sorted(ids(collector)) == sorted(filled)
        sizes = [len(body.splitlines()) for body in collector.bodies()]
        assert max(sizes) == 3 and len(sizes) >= 9  # batches of batch_size, never the whole read
        # 25 events in reads of 12 (and windows read ahead), not a read per batch
        assert len(spy.reads("AS line")) <= 6 < len(sizes)
        assert sum(runner.load_positions().values()) == sum(runner.positions.values())
    finally:
        runner.sink.close()


def test_a_refused_batch_holds_back_the_rest_of_its_read(store, collector, filled, monkeypatch):
    monkeypatch.setattr(reads, "READ_EVENTS", 12)
    collector.down_after = 2  # the third batch of the first read is refused
    runner = _runner(store, collector.base)
    runner.start()
    try:
        wait_for(lambda: collector.refused >= 2, what="the third batch refused")
        order = stored_order(store)
        assert ids(collector) == order[:6]  # the rest of the read waits for it
        assert sum(runner.position_file.read().positions.values()) == 6
        collector.down = False
        wait_for(lambda: len(ids(collector)) >= len(filled), what="the rest once the hook is back")
        assert ids(collector) == order  # in order, nothing twice, nothing skipped
    finally:
        runner.stop()
