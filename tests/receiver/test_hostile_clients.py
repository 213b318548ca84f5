"""Issue 13 item 4: slow and half-open clients on real sockets must not starve well-behaved
ones (a real OTel SDK exporter keeps getting its events stored), and a gRPC flood of one token
is pushed back with RetryInfo while another token still gets through."""

from __future__ import annotations

import resource
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from conftest import start_receiver
from google.rpc import error_details_pb2
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from otlp_builders import audit_attrs, log_record, request

from receiver.filters import EventFilter

GOOD = "good-token-0123456789"
EVIL = "evil-token-0123456789"
TOKENS = [{"token": GOOD, "tenant": "acme"}, {"token": EVIL, "tenant": "globex"}]
ATTACKER = "127.0.0.2"  # another loopback address: the attack's per-address share is its own


def sdk_send(port: int, n: int) -> float:
    """Emit ``n`` events through the real OTel SDK HTTP exporter; the seconds it took."""
    provider = LoggerProvider()
    exporter = OTLPLogExporter(
        endpoint=f"http://127.0.0.1:{port}/v1/logs", headers={"Authorization": f"Bearer {GOOD}"}, timeout=10
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("good")
    started = time.monotonic()
    for i in range(n):
        logger.emit(
            event_name="audit.document.read",
            timestamp=time.time_ns(),
            attributes=audit_attrs(enduser__id=f"good-{i}"),
        )
    provider.shutdown()
    return time.monotonic() - started


def attacker_socket(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind((ATTACKER, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


@pytest.fixture
def hostile_receiver(store) -> Iterator:
    r = start_receiver(
        store,
        ingest_tokens=TOKENS,
        limits={
            "header_timeout_seconds": 3,
            "body_timeout_seconds": 4,
            "max_connections": 64,
            "max_connections_per_address": 40,
        },
        sql_endpoint={
            "listen": "127.0.0.1:0",
            "users": [{"user": "grafana", "password": "grafana-password-1", "tenants": ["*"]}],
        },
    )
    yield r
    r.stop_listeners()


def test_slow_bodies_of_one_token_do_not_starve_other_tenants(hostile_receiver, store):
    """32 connections send a valid token and dribble their bodies (the old in-flight cap was 32)."""
    port = hostile_receiver.http_port
    stop = threading.Event()
    answers: list[bytes] = []

    def dribble() -> None:
        sock = attacker_socket(port)
        sock.sendall(
            f"POST /v1/logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {EVIL}\r\n"
            "Content-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n".encode()
        )
        sock.settimeout(0.5)
        try:
            while not stop.is_set():
                try:
                    sock.sendall(b"\x0a")
                    data = sock.recv(4096)
                    answers.append(data)
                    return
                except TimeoutError:
                    continue
                except OSError:
                    return
        finally:
            sock.close()

    threads = [threading.Thread(target=dribble, daemon=True) for _ in range(32)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # every dribbler is in (or refused)
    try:
        took = sdk_send(port, 5)
        deadline = time.monotonic() + 15
        for t in threads:  # the ones holding a slot are answered once the body timeout passes
            t.join(max(0.0, deadline - time.monotonic()))
    finally:
        stop.set()
    assert store.count(EventFilter(tenant="acme")) == 5
    assert took < 8, f"well-behaved client took {took:.1f} s"
    statuses = [a.split(b" ", 2)[1] for a in answers if a.startswith(b"HTTP/1.1 ")]
    # over its share the token is told to come back (429), its share is cut off by the body timeout (408)
    assert statuses.count(b"429") >= 16 and b"408" in statuses, statuses


def test_half_sent_headers_are_capped_and_timed_out(hostile_receiver, store):
    """300 connections that never finish their headers: the listener keeps at most its per-address
    share of them, closes the rest at once and the others after the header timeout."""
    port = hostile_receiver.http_port
    socks = []
    try:
        for _ in range(300):
            sock = attacker_socket(port)
            sock.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\n")
            socks.append(sock)
        time.sleep(1.0)
        assert sum(closed_by_server(s) for s in socks) >= 300 - 40
        assert sdk_send(port, 3) < 8
        assert store.count(EventFilter(tenant="acme")) == 3
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(closed_by_server(s) for s in socks):
            time.sleep(0.5)
        assert all(closed_by_server(s) for s in socks), "header timeout did not close stalled connections"
        # the admin and SQL listeners have the same cap
        for port in (hostile_receiver.admin_port, hostile_receiver.sql_port):
            more = [attacker_socket(port) for _ in range(60)]
            socks += more
            time.sleep(1.0)
            assert sum(closed_by_server(s) for s in more) >= 20, port
    finally:
        for s in socks:
            s.close()


def _retry_info(call: grpc.Call) -> error_details_pb2.RetryInfo | None:
    for key, value in call.trailing_metadata() or ():
        if key == "google.rpc.retryinfo-bin":
            return error_details_pb2.RetryInfo.FromString(value)
    return None


def test_grpc_flood_of_one_token_is_pushed_back_with_retry_info(store):
    r = start_receiver(
        store,
        ingest_tokens=TOKENS,
        limits={"grpc_max_concurrent_calls": 8, "max_in_flight_per_token": 2, "max_in_flight_per_address": 6},
    )
    target = f"127.0.0.1:{r.grpc_port}"
    flood_body = request(
        [log_record(audit_attrs(audit__tenant__id="globex", enduser__id=f"f{i}")) for i in range(300)]
    )
    stop = threading.Event()
    refusals: list[tuple[grpc.StatusCode, error_details_pb2.RetryInfo | None]] = []
    ok = [0]

    def flood() -> None:
        with grpc.insecure_channel(target) as channel:
            stub = logs_service_pb2_grpc.LogsServiceStub(channel)
            while not stop.is_set():
                for record in flood_body.resource_logs[0].scope_logs[0].log_records:
                    record.attributes[0].value.string_value = str(uuid.uuid4())
                try:
                    stub.Export(flood_body, metadata=(("authorization", f"Bearer {EVIL}"),), timeout=30)
                    ok[0] += 1
                except grpc.RpcError as exc:
                    refusals.append((exc.code(), _retry_info(exc)))

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(24)]
    for t in threads:
        t.start()
    good_errors = []
    try:
        time.sleep(1.0)
        with grpc.insecure_channel(target) as channel:
            stub = logs_service_pb2_grpc.LogsServiceStub(channel)
            for i in range(5):
                try:
                    stub.Export(
                        request([log_record(audit_attrs(enduser__id=f"good-{i}"))]),
                        metadata=(("authorization", f"Bearer {GOOD}"),),
                        timeout=10,
                    )
                except grpc.RpcError as exc:
                    good_errors.append(exc.code())
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        r.stop_listeners()
    assert good_errors == []
    assert store.count(EventFilter(tenant="acme")) == 5
    assert refusals, "the flood was never pushed back"
    assert {code for code, _ in refusals} <= {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE}
    assert all(info is not None and info.retry_delay.seconds >= 1 for _, info in refusals)
    assert ok[0] > 0


def test_serve_raises_its_open_file_limit_to_the_hard_limit(serve_process, monkeypatch):
    """Started with a soft limit of 1024 (a common default), serve runs with soft = hard."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 1024:
        pytest.skip("needs a finite hard limit above 1024")
    real_popen = subprocess.Popen

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: real_popen(*a, preexec_fn=low_limit, **k))
    serve = serve_process().start()
    monkeypatch.undo()
    limits = Path(f"/proc/{serve.proc.pid}/limits").read_text()
    line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
    assert line.split()[3:5] == [str(hard), str(hard)], line
