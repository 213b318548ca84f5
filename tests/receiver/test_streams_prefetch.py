"""Streams' read ahead (issue 18, third round): while a stream catches up on one log, the log's
next window is read while the current batch is sent; it is delivered only after the batch before
it was accepted and its position stored. A refused batch is retried alone (the window read ahead
never goes first), and a restart while a batch is refused resumes at that batch. Real OTLP into
real chDB, a real loopback webhook."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from conftest import start_receiver
from stream_support import HttpCollector, send_events, stored_order, wait_for

from receiver.store.sql import Statement
from receiver.streams import reads


@pytest.fixture(autouse=True)
def one_batch_a_read(monkeypatch):
    """A read takes one batch (these tests read ahead windows of a few events)."""
    monkeypatch.setattr(reads, "READ_EVENTS", 1)


FAST = {"poll_seconds": 0.1, "batch_seconds": 0, "retry_initial_seconds": 0.2, "retry_max_seconds": 0.5}


def hook(url: str) -> dict:
    return {"name": "siem", "kind": "webhook", "url": url, "secret": "s", "batch_size": 4, **FAST}


def ids(collector: HttpCollector) -> list[str]:
    return [json.loads(line)["id"] for body in collector.bodies() for line in body.splitlines()]


def test_a_window_read_ahead_waits_for_the_refused_batch_before_it(store):
    collector = HttpCollector()
    receiver = start_receiver(store, streams=[hook(collector.base)])
    try:
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        send_events(grpc, "acme", 4)
        wait_for(lambda: len(ids(collector)) >= 4, what="the first batch")
        collector.down = True
        send_events(grpc, "acme", 16)  # four full batches of one log: the catch-up path
        wait_for(lambda: collector.refused >= 3, what="retries of the second batch")
        runner = receiver.streams.runners["siem"]
        refused = [batch for batch, ok in collector.attempts if not ok]
        assert len(set(refused)) == 1  # only the batch after the accepted one, again and again
        fifth = store.query_table(
            Statement(
                f"SELECT toString(chain_id) AS log, seq FROM {store.database}.audit_events"
                " WHERE chain_id != '' ORDER BY chain_id, seq LIMIT 1 OFFSET 4",
                {},
            )
        ).to_pylist()[0]
        assert runner.positions == {fifth["log"]: fifth["seq"]}  # nothing past the refused batch stored
        assert runner.load_positions() == runner.positions
        collector.down = False
        wait_for(lambda: len(ids(collector)) >= 20, what="the rest after the outage")
        time.sleep(0.5)
        assert ids(collector) == stored_order(store)  # in order, nothing twice, nothing skipped
        accepted = [batch for batch, ok in collector.attempts if ok]
        assert accepted[1] == refused[0]  # the refused batch went first once the hook was back
        assert runner.ahead.used >= 2  # the later windows were the ones read ahead
    finally:
        receiver.stop_listeners()
        collector.close()


def test_a_restart_while_a_batch_is_refused_resumes_at_that_batch(store):
    collector = HttpCollector()
    receiver = start_receiver(store, streams=[hook(collector.base)])
    grpc = f"127.0.0.1:{receiver.grpc_port}"
    first = send_events(grpc, "acme", 8)
    wait_for(lambda: len(ids(collector)) >= 8, what="the first batches")
    collector.down = True
    later = send_events(grpc, "acme", 12)
    wait_for(lambda: collector.refused >= 2, what="a refused batch (with the next one read ahead)")
    receiver.stop_listeners()  # the window read ahead was only memory
    collector.down = False
    receiver = start_receiver(store, streams=[hook(collector.base)])
    try:
        wait_for(lambda: len(ids(collector)) >= 20, what="the rest after the restart")
        time.sleep(0.5)
        assert ids(collector) == first + later
    finally:
        receiver.stop_listeners()
        collector.close()


def test_a_replay_while_a_batch_is_refused_drops_the_window_read_ahead(store):
    collector = HttpCollector()
    receiver = start_receiver(store, streams=[hook(collector.base)])
    try:
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        first = send_events(grpc, "acme", 4)
        wait_for(lambda: len(ids(collector)) >= 4, what="the first batch")
        collector.down = True
        send_events(grpc, "acme", 16)
        wait_for(lambda: collector.refused >= 2, what="a refused batch (with the next one read ahead)")
        receiver.streams.replay("siem", dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), "sam")
        collector.down = False
        # everything again from each log's first index, the replay's own event included
        wait_for(lambda: len(ids(collector)) >= 4 + 21, what="the replayed events")
        time.sleep(0.5)
        assert ids(collector) == first + stored_order(store)
    finally:
        receiver.stop_listeners()
        collector.close()
