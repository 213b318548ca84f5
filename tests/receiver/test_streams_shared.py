"""Streams' steady state (issue 18, second round): a caught-up stream sleeps until this receiver
commits instead of reading every poll, and streams with the same tenants, filter and format share
one read and one gzip body, each keeping its own positions, order and destination. Real OTLP into
real chDB, real loopback webhooks."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
from conftest import start_receiver
from prometheus_client import CollectorRegistry
from stream_support import HttpCollector, StoreSpy, send_events, stored_order, wait_for

from receiver.streams import reads
from receiver.streams import runner as runner_module
from receiver.streams.config import Stream
from receiver.streams.heads import Heads
from receiver.streams.metrics import StreamMetrics
from receiver.streams.runner import Runner
from receiver.streams.shared import SharedReads

FAST = {"poll_seconds": 0.1, "batch_seconds": 0, "retry_initial_seconds": 0.2, "retry_max_seconds": 1}


@pytest.fixture
def collectors():
    pair = (HttpCollector(), HttpCollector())
    yield pair
    for c in pair:
        c.close()


def ids(collector: HttpCollector) -> list[str]:
    return [json.loads(line)["id"] for body in collector.bodies() for line in body.splitlines()]


def hook(name: str, url: str, **extra: object) -> dict:
    return {
        "name": name,
        "kind": "webhook",
        "url": url,
        "secret": f"secret-{name}",
        "batch_size": 4,
        **FAST,
        **extra,
    }


def test_a_caught_up_stream_reads_nothing_until_a_commit_wakes_it(store, collectors, monkeypatch):
    # only the commit can wake it within this test: the slow full read is an hour away
    monkeypatch.setattr(reads, "FULL_READ_EVERY_SECONDS", 3600.0)
    collector = collectors[0]
    receiver = start_receiver(store, streams=[hook("siem", collector.base)])
    try:
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        first = send_events(grpc, "acme", 6)
        wait_for(lambda: len(ids(collector)) >= 6, what="the first events")
        runner = receiver.streams.runners["siem"]
        spy = StoreSpy(runner.reader.store)
        runner.reader.store = spy
        time.sleep(2.0)  # 20 polls of poll_seconds 0.1 before
        assert len(spy.reads()) == 0
        later = send_events(grpc, "acme", 3)
        wait_for(lambda: len(ids(collector)) >= 9, timeout=30, what="delivery woken by the commit")
        assert ids(collector) == first + later
        assert len(spy.reads()) >= 1
        # the woken read asks only the logs committed to, from their positions (the seq index prunes)
        assert all("{s_only:Array(String)}" in sql for sql in spy.reads()), spy.statements
    finally:
        receiver.stop_listeners()


def _runner(store, name: str, url: str, shared: SharedReads) -> Runner:
    stream = Stream(name=name, kind="webhook", url=url, secret=f"secret-{name}", batch_size=4, **FAST)
    return Runner(store, stream, StreamMetrics(CollectorRegistry()), f"test-{name}", shared=shared)


def test_siblings_share_one_read_and_one_body_and_each_delivers_everything_in_order(store, collectors):
    receiver = start_receiver(store)
    grpc = f"127.0.0.1:{receiver.grpc_port}"
    send_events(grpc, "acme", 10)
    send_events(grpc, "globex", 5)
    receiver.stop_listeners()
    shared = SharedReads(ttl=60.0)  # nothing is committed while they step
    one, two = (_runner(store, n, c.base, shared) for n, c in zip(("one", "two"), collectors, strict=True))
    try:
        steps = 0
        while True:
            a, b = one.step(), two.step()
            steps += 2
            if not a and not b:
                break
        order = stored_order(store)
        assert ids(collectors[0]) == order and ids(collectors[1]) == order
        assert shared.queries < steps and shared.reused >= steps // 2 - 1  # the sibling's reads were reused
        # the gzip body was made once: byte-identical bodies (only the signature differs)
        assert [a for _, _, a in collectors[0].accepted] == [b for _, _, b in collectors[1].accepted]
        assert one.load_positions() == two.load_positions()
    finally:
        one.sink.close()
        two.sink.close()


def test_a_siblings_outage_leaves_the_other_streams_position_and_delivery_alone(store, collectors):
    up, down = collectors
    receiver = start_receiver(store, streams=[hook("up", up.base), hook("down", down.base)])
    try:
        assert receiver.streams.runners["up"].shared is receiver.streams.runners["down"].shared
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        first = send_events(grpc, "acme", 5)
        wait_for(lambda: len(ids(up)) >= 5 and len(ids(down)) >= 5, what="both streams deliver")
        down.down = True
        later = send_events(grpc, "acme", 7) + send_events(grpc, "globex", 2)
        wait_for(lambda: len(ids(up)) >= 14, what="the healthy stream goes on")
        wait_for(lambda: down.refused >= 2, what="retries against the outage")
        held = receiver.streams.runners["down"].load_positions()
        assert sum(held.values()) == 5  # its stored position did not move with its sibling's
        assert sorted(ids(up)) == sorted(first + later)
        assert ids(up) == stored_order(store)
        down.down = False
        wait_for(lambda: len(ids(down)) >= 14, what="the sibling catches up after its outage")
        time.sleep(0.5)
        assert ids(down) == stored_order(store)  # in order, nothing lost, nothing twice
        assert ids(up) == stored_order(store)
    finally:
        receiver.stop_listeners()


def test_shared_reads_run_one_query_for_concurrent_askers(store):
    receiver = start_receiver(store)
    send_events(f"127.0.0.1:{receiver.grpc_port}", "acme", 3)
    receiver.stop_listeners()
    shared = SharedReads(ttl=5.0)
    spy = StoreSpy(store)
    from receiver.store import streams_sql as q

    statement = q.next_batch(store.database, q.condition({}, ("*",)), {}, 10)
    results: list[object] = []
    askers = [object() for _ in range(4)]
    threads = [
        threading.Thread(target=lambda a=a: results.append(shared.read(spy, statement, a)[0])) for a in askers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(spy.reads()) == 1 and shared.reused == 3
    assert all(r is results[0] for r in results) and results[0].num_rows == 3
    # a runner asking again wants events newer than what it took: a new query, never its own result
    again, reused = shared.read(spy, statement, askers[0])
    assert len(spy.reads()) == 2 and not reused and again is not results[0]


def test_logs_this_receiver_did_not_commit_to_come_with_the_periodic_read_of_every_log(
    store, collectors, monkeypatch
):
    """The woken read asks only the logs the writer reported; another receiver's log (here:
    one the heads are not told about) is delivered by the read of every log that follows."""
    collector = collectors[0]
    receiver = start_receiver(store)
    try:
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        send_events(grpc, "acme", 3)
        send_events(grpc, "globex", 3)
        heads = Heads()
        stream = Stream(name="t", kind="webhook", url=collector.base, secret="s", batch_size=100, **FAST)
        runner = Runner(store, stream, StreamMetrics(CollectorRegistry()), "test", heads=heads)
        while runner.step():
            pass
        assert len(ids(collector)) == 6  # a read of every log delivered the history
        acme_new = send_events(grpc, "acme", 2)
        globex_new = send_events(grpc, "globex", 2)
        (acme_log,) = [log for log in runner.positions if "/acme/" in log]
        heads.advanced({acme_log: runner.positions[acme_log] + 2})  # only acme's commit is reported
        assert runner.step() == 2
        assert ids(collector)[6:] == acme_new  # the reported log only
        monkeypatch.setattr(reads, "FULL_READ_EVERY_SECONDS", 0.0)
        assert runner.step() == 2  # the read of every log
        assert ids(collector)[8:] == globex_new
        assert sorted(ids(collector)) == sorted(stored_order(store))
        runner.sink.close()
    finally:
        receiver.stop_listeners()


def test_a_replay_wakes_a_caught_up_stream(store, collectors, monkeypatch):
    monkeypatch.setattr(reads, "FULL_READ_EVERY_SECONDS", 3600.0)
    monkeypatch.setattr(runner_module, "MARKER_EVERY_SECONDS", 3600.0)
    collector = collectors[0]
    receiver = start_receiver(store, streams=[hook("siem", collector.base, tenants=["acme"])])
    try:
        sent = send_events(f"127.0.0.1:{receiver.grpc_port}", "acme", 5)
        wait_for(lambda: len(ids(collector)) >= 5, what="the first events")
        receiver.streams.replay("siem", dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), "sam")
        # sent again from the start, then the replay's own audit event
        wait_for(lambda: len(ids(collector)) >= 11, timeout=30, what="the replayed events")
        assert ids(collector)[5:10] == sent
    finally:
        receiver.stop_listeners()


def test_a_caught_up_stream_waiting_for_batch_seconds_counts_this_receivers_commits_not_the_store(
    store, collectors, monkeypatch
):
    # only this receiver's commits can hold new events within the test (the full read is an hour away)
    monkeypatch.setattr(reads, "FULL_READ_EVERY_SECONDS", 3600.0)
    collector = collectors[0]
    stream = hook("siem", collector.base, batch_size=100, batch_seconds=0.5)
    receiver = start_receiver(store, streams=[stream])
    try:
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        first = send_events(grpc, "acme", 6)
        wait_for(lambda: len(ids(collector)) >= 6, what="the first events")
        runner = receiver.streams.runners["siem"]
        spy = StoreSpy(runner.reader.store)
        runner.reader.store = spy
        later = send_events(grpc, "acme", 3) + send_events(grpc, "globex", 2)
        wait_for(lambda: len(ids(collector)) >= 11, timeout=30, what="the partial batch after batch_seconds")
        assert ids(collector)[:6] == first
        assert ids(collector)[6:] == [i for i in stored_order(store) if i in set(later)]
        # no probe query (log and index only): the commits said how many wait; one read of the batch
        assert not any(sql.startswith("SELECT log, idx FROM") for sql in spy.statements), spy.statements
        # two if the second export's commit came after the read
        assert 1 <= len(spy.reads()) <= 2, spy.statements
    finally:
        receiver.stop_listeners()


def test_commits_to_no_log_of_the_stream_do_not_put_off_the_read_of_every_log(store, collectors, monkeypatch):
    """A stream waiting for batch_seconds counts this receiver's commits; a commit to none of
    its logs counts nothing, and must not count as a read of every log (another receiver's
    events would then wait as long as this one commits elsewhere)."""
    monkeypatch.setattr(reads, "FULL_READ_EVERY_SECONDS", 1.0)
    collector = collectors[0]
    receiver = start_receiver(store)
    try:
        grpc = f"127.0.0.1:{receiver.grpc_port}"
        send_events(grpc, "acme", 3)
        heads = Heads()
        settings = {**FAST, "batch_seconds": 0.2}
        stream = Stream(name="t", kind="webhook", url=collector.base, secret="s", batch_size=100, **settings)
        runner = Runner(store, stream, StreamMetrics(CollectorRegistry()), "test", heads=heads)
        deadline = time.monotonic() + 30
        while len(ids(collector)) < 3 and time.monotonic() < deadline:
            runner.step()
            time.sleep(0.05)
        assert len(ids(collector)) == 3  # the history, by a read of every log
        other = send_events(grpc, "globex", 2)  # a log the heads are not told about
        until = time.monotonic() + 4.0
        while time.monotonic() < until and len(ids(collector)) < 5:
            heads.kick()  # this receiver commits, to no log of the stream
            runner.step()
            time.sleep(0.1)
        assert ids(collector)[3:] == other
        runner.sink.close()
    finally:
        receiver.stop_listeners()
