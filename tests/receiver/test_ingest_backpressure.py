"""Push-back instead of unbounded buffering: a full writer queue and a slow store both answer
UNAVAILABLE / 503 with a retry delay, and a request that gave up waiting is never written behind
its client's back (so the retry is the only copy). The store is real chDB; the only fake is a gate
that holds its insert, because "the disk is slow right now" cannot be produced on demand."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest
from delivery_support import start_receiver
from google.rpc import error_details_pb2
from otlp_builders import audit_attrs, export, log_record, request

from receiver.filters import EventFilter


class GatedStore:
    """The real store, with inserts held until ``gate`` opens."""

    def __init__(self, store) -> None:
        self._store = store
        self.gate = threading.Event()
        self.inserting = threading.Event()

    def insert(self, table) -> None:
        self.inserting.set()
        self.gate.wait(30)
        self._store.insert(table)

    def __getattr__(self, name):
        return getattr(self._store, name)


def _retry_seconds(err: grpc.RpcError) -> int:
    trailers = dict(err.trailing_metadata())
    return error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay.seconds


def test_full_queue_and_slow_store_push_back_and_timed_out_requests_are_withdrawn(store):
    gated = GatedStore(store)
    receiver = start_receiver(gated, ingest={"max_queue_rows": 10, "commit_timeout_seconds": 1.0})
    endpoint = f"127.0.0.1:{receiver.grpc_port}"
    first = request([log_record(audit_attrs(enduser__id="first"))])
    queued = request([log_record(audit_attrs(enduser__id="queued")) for _ in range(10)])
    overflow = request([log_record(audit_attrs(enduser__id="overflow"))])
    try:
        with ThreadPoolExecutor(2) as pool:
            held = pool.submit(export, endpoint, first)
            assert gated.inserting.wait(10)  # the writer is inside the store, holding "first"
            waiting = pool.submit(export, endpoint, queued)  # fills the queue, then times out
            metrics_url = f"http://127.0.0.1:{receiver.admin_port}/metrics"
            while "otel_audit_writer_queue_rows 10.0" not in httpx.get(metrics_url).text:
                time.sleep(0.01)  # until "queued" sits in the queue
            with pytest.raises(grpc.RpcError) as err:
                export(endpoint, overflow)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE and _retry_seconds(err.value) == 1
            assert "overloaded" in err.value.details()
            r = httpx.post(
                f"http://127.0.0.1:{receiver.http_port}/v1/logs",
                content=overflow.SerializeToString(),
                headers={"content-type": "application/x-protobuf"},
            )
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            with pytest.raises(grpc.RpcError) as err:
                waiting.result(30)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE and _retry_seconds(err.value) == 5
            gated.gate.set()
            with pytest.raises(grpc.RpcError):
                held.result(30)  # it also waited past the timeout, but it was being written
        # the writer is FIFO: once a later request is stored, everything queued before it was handled
        export(endpoint, request([log_record(audit_attrs(enduser__id="probe"))]))
        # "queued" was withdrawn when it timed out; "first" was already in the store's hands
        users = sorted(row["user_id"] for row in store.search(EventFilter(), 100))
        assert users == ["first", "probe"]
        export(endpoint, first)  # the clients retry: stored once, each
        export(endpoint, queued)
        users = sorted(row["user_id"] for row in store.search(EventFilter(), 100))
        assert users == ["first", "probe"] + ["queued"] * 10
        metrics = httpx.get(f"http://127.0.0.1:{receiver.admin_port}/metrics").text
        assert 'otel_audit_refused_requests_total{code="overloaded"} 2.0' in metrics
        assert 'otel_audit_refused_requests_total{code="store_timeout"} 2.0' in metrics
        assert "otel_audit_duplicate_events_total 1.0" in metrics
    finally:
        gated.gate.set()
        receiver.stop_listeners()
