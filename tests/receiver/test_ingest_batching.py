"""The batching path end to end (real gRPC and HTTP servers, real chDB): requests in flight at
once are decoded and validated together, yet each is answered with its own OTLP partial success
(its own rejected count and reasons), undecodable bodies fail alone, and every accepted row is
stored once."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import grpc
import httpx
import pytest
from conftest import start_receiver
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from otlp_builders import audit_attrs, export, log_record, request

import receiver.ingest as ingest_module
from receiver.filters import EventFilter

_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def _records(tag: int, good: int, bad: int) -> list:
    out = [
        log_record(audit_attrs(enduser__id=f"user-{tag}", audit__resource__id=f"r-{i}")) for i in range(good)
    ]
    out += [log_record(audit_attrs(audit__action=f"Bad{tag}")) for _ in range(bad)]
    return out


@pytest.fixture
def batching_receiver(store):
    sizes: Counter[int] = Counter()
    real = ingest_module.process
    gate = threading.Barrier(2, timeout=30)
    first = threading.Event()

    def spy(bodies, identities, *args, **kw):
        if not first.is_set():  # hold the first batch so that the others queue up behind it
            first.set()
            gate.wait()
        sizes[len(bodies)] += 1
        return real(bodies, identities, *args, **kw)

    with mock.patch.object(ingest_module, "process", spy):
        r = start_receiver(store)
        try:
            yield r, sizes, gate
        finally:
            r.stop_listeners()


def test_concurrent_requests_are_batched_and_answered_each_with_its_own_partial_success(
    batching_receiver, store
):
    receiver, sizes, gate = batching_receiver
    endpoint = f"127.0.0.1:{receiver.grpc_port}"
    # request i: 3 + i good records and i rejected ones (0: none, fully accepted)
    jobs = {i: request(_records(i, 3 + i, i)) for i in range(10)}
    with ThreadPoolExecutor(12) as pool:
        futures = {i: pool.submit(export, endpoint, req) for i, req in jobs.items()}
        extra = pool.submit(export, endpoint, request(_records(99, 1, 0)))
        gate.wait()  # the first request is in the batcher; release it once the rest are queued
        responses = {i: f.result(timeout=60) for i, f in futures.items()}
        extra.result(timeout=60)
    for i, response in responses.items():
        if i == 0:
            assert not response.HasField("partial_success")
            continue
        assert response.partial_success.rejected_log_records == i
        assert f"Bad{i}" in response.partial_success.error_message
        for j in range(1, 10):
            if j != i:
                assert f"Bad{j}'" not in response.partial_success.error_message
    assert max(sizes) > 1, sizes  # several requests did go through one decode
    assert store.count(EventFilter(tenant="acme")) == sum(3 + i for i in range(10)) + 1


def test_http_protobuf_and_grpc_share_the_path_and_undecodable_bodies_fail_alone(batching_receiver, store):
    receiver, sizes, gate = batching_receiver
    good = request(_records(1, 2, 1)).SerializeToString()
    url = f"http://127.0.0.1:{receiver.http_port}/v1/logs"

    def grpc_raw(body: bytes) -> ExportLogsServiceResponse:
        with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
            call = channel.unary_unary(
                _EXPORT, request_serializer=None, response_deserializer=ExportLogsServiceResponse.FromString
            )
            return call(body, timeout=30)

    with ThreadPoolExecutor(6) as pool:
        held = pool.submit(grpc_raw, request(_records(7, 1, 0)).SerializeToString())
        calls = [
            pool.submit(httpx.post, url, content=good, headers={"content-type": "application/x-protobuf"}),
            pool.submit(
                httpx.post, url, content=b"\x0a\x05abc", headers={"content-type": "application/x-protobuf"}
            ),
            pool.submit(grpc_raw, good.replace(b"test-svc", b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8")),
            pool.submit(grpc_raw, good),
        ]
        gate.wait()
        held.result(timeout=60)
        ok_http, bad_http = calls[0].result(timeout=60), calls[1].result(timeout=60)
        with pytest.raises(grpc.RpcError) as bad_grpc:
            calls[2].result(timeout=60)
        ok_grpc = calls[3].result(timeout=60)
    assert ok_http.status_code == 200
    assert ExportLogsServiceResponse.FromString(ok_http.content).partial_success.rejected_log_records == 1
    assert bad_http.status_code == 400
    assert bad_grpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ok_grpc.partial_success.rejected_log_records == 1
    # the same body twice (HTTP and gRPC): its event ids are stored once
    assert store.count(EventFilter(tenant="acme")) == 1 + 2


def test_stopping_the_receiver_ends_the_batcher_thread(store):
    before = set(threading.enumerate())  # other tests' receivers may still be running
    receiver = start_receiver(store)
    try:
        export(f"127.0.0.1:{receiver.grpc_port}", request(_records(1, 2, 0)))
        ours = [t for t in threading.enumerate() if t not in before and t.name.startswith("ingest-")]
        assert any(t.name == "ingest-batcher" for t in ours)
    finally:
        receiver.stop_listeners()
    assert [t.name for t in ours if t.is_alive()] == []
    assert store.count(EventFilter(tenant="acme")) == 2
