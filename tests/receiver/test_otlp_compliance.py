"""OTLP spec compliance of both transports against a real receiver (real gRPC, real HTTP, real chDB):
content types, the OTLP JSON mapping, gzip, size limits, status codes and their bodies."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid

import grpc
import httpx
import pytest
from delivery_support import start_receiver
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from otlp_builders import audit_attrs, log_record, request

from receiver.filters import EventFilter

TOKEN = "acme-ingest-token-0123456789"
PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}
#: an hour ago, whole seconds, plus 123456789 ns (the stored time keeps microseconds)
_WHEN = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=1)
_WHEN_NS = int(_WHEN.timestamp()) * 10**9 + 123_456_789
_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def http_url(receiver) -> str:
    return f"http://127.0.0.1:{receiver.http_port}/v1/logs"


def grpc_raw(receiver, body: bytes, metadata=None, compression=None) -> ExportLogsServiceResponse:
    """Send raw bytes as the Export request (to send what no generated stub would)."""
    with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
        call = channel.unary_unary(
            _EXPORT, request_serializer=None, response_deserializer=ExportLogsServiceResponse.FromString
        )
        return call(body, metadata=metadata, timeout=30, compression=compression)


def otlp_json_record(event_id: str, **extra: object) -> dict:
    return {
        "timeUnixNano": str(_WHEN_NS),
        "severityNumber": 9,
        "severityText": "INFO",
        "eventName": "audit.document.read",
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "body": {"stringValue": "looked at it"},
        "attributes": [
            {"key": "audit.event.id", "value": {"stringValue": event_id}},
            {"key": "audit.tenant.id", "value": {"stringValue": "acme"}},
            {"key": "enduser.id", "value": {"stringValue": "alice"}},
            {"key": "audit.action", "value": {"stringValue": "read"}},
            {"key": "audit.resource.type", "value": {"stringValue": "document"}},
            {"key": "http.response.status_code", "value": {"intValue": "200"}},
            {"key": "retries", "value": {"intValue": 3}},
        ],
        **extra,
    }


def otlp_json(records: list[dict]) -> dict:
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js-svc"}}]},
                "scopeLogs": [{"scope": {"name": "t"}, "logRecords": records, "futureField": 1}],
            }
        ]
    }


def test_http_protobuf_is_stored_and_answered_in_protobuf(receiver, store):
    body = request([log_record(audit_attrs(enduser__id="pb-user"))]).SerializeToString()
    r = httpx.post(http_url(receiver), content=body, headers=PB)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    assert not ExportLogsServiceResponse.FromString(r.content).HasField("partial_success")
    assert [row["user_id"] for row in store.search(EventFilter(), 10)] == ["pb-user"]


def test_http_json_follows_the_otlp_json_mapping(receiver, store):
    event_id = str(uuid.uuid4())
    bad = otlp_json_record(str(uuid.uuid4()))
    bad["attributes"] = [a for a in bad["attributes"] if a["key"] != "audit.action"]
    r = httpx.post(
        http_url(receiver), content=json.dumps(otlp_json([otlp_json_record(event_id), bad])), headers=JS
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    answer = r.json()
    assert int(answer["partialSuccess"]["rejectedLogRecords"]) == 1
    assert "audit.action is missing" in answer["partialSuccess"]["errorMessage"]
    (row,) = store.search(EventFilter(), 10)
    assert row["id"] == event_id
    assert row["trace_id"] == "5b8efff798038103d269b633813fc60c" and row["span_id"] == "eee19b7ec3c1b174"
    assert row["created_at"] == _WHEN.strftime("%Y-%m-%dT%H:%M:%S.123456Z")
    assert row["http_status"] == 200 and row["attributes"] == {"retries": "3"}
    assert row["service_name"] == "js-svc" and row["reason"] == "looked at it"


def test_http_json_fully_accepted_answers_an_empty_object(receiver):
    r = httpx.post(http_url(receiver), json=otlp_json([otlp_json_record(str(uuid.uuid4()))]))
    assert r.status_code == 200 and r.json() == {}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (json.dumps(otlp_json([otlp_json_record("x", traceId="zz")])).encode(), "not hex"),
        (json.dumps(otlp_json([otlp_json_record("x", spanId="00ff")])).encode(), "8 bytes"),
        (json.dumps({"resourceLogs": "nope"}).encode(), "OTLP JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_http_json_undecodable_is_400_with_a_json_status(receiver, store, body, reason):
    r = httpx.post(http_url(receiver), content=body, headers=JS)
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    status = r.json()
    assert status["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0] and reason in status["message"]
    assert store.count(EventFilter()) == 0


def test_http_protobuf_undecodable_is_400_with_a_protobuf_status(receiver):
    r = httpx.post(http_url(receiver), content=b"\x0a\xff\xff\xff\xff\x0f garbage", headers=PB)
    assert r.status_code == 400 and r.headers["content-type"] == "application/x-protobuf"
    status = status_pb2.Status.FromString(r.content)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and "not an OTLP" in status.message


def test_http_unsupported_type_method_path_and_encoding(receiver):
    url = http_url(receiver)
    assert httpx.post(url, content=b"hi", headers={"content-type": "text/plain"}).status_code == 415
    assert httpx.get(url).status_code == 405
    assert httpx.post(url.replace("/v1/logs", "/v1/traces"), content=b"", headers=PB).status_code == 404
    r = httpx.post(url, content=b"x", headers={**PB, "content-encoding": "br"})
    assert r.status_code == 415 and "Content-Encoding" in status_pb2.Status.FromString(r.content).message


def test_gzip_on_both_transports(receiver, store):
    body = request([log_record(audit_attrs(enduser__id="gz-http"))]).SerializeToString()
    r = httpx.post(
        http_url(receiver), content=gzip.compress(body), headers={**PB, "content-encoding": "gzip"}
    )
    assert r.status_code == 200
    js = json.dumps(otlp_json([otlp_json_record(str(uuid.uuid4()))])).encode()
    r = httpx.post(http_url(receiver), content=gzip.compress(js), headers={**JS, "content-encoding": "gzip"})
    assert r.status_code == 200
    grpc_body = request([log_record(audit_attrs(enduser__id="gz-grpc"))]).SerializeToString()
    grpc_raw(receiver, grpc_body, compression=grpc.Compression.Gzip)
    assert sorted(row["user_id"] for row in store.search(EventFilter(), 10)) == [
        "alice",
        "gz-grpc",
        "gz-http",
    ]
    r = httpx.post(
        http_url(receiver), content=b"\x1f\x8b not gzip", headers={**PB, "content-encoding": "gzip"}
    )
    assert r.status_code == 400


def test_size_limits_on_both_transports(store):
    limits = {"grpc_max_message_bytes": 64 * 1024, "http_max_body_bytes": 64 * 1024}
    receiver = start_receiver(store, ingest=limits)
    try:
        big = request([log_record(audit_attrs(padding="x" * 100_000))]).SerializeToString()
        r = httpx.post(http_url(receiver), content=big, headers=PB)
        assert r.status_code == 413
        assert status_pb2.Status.FromString(r.content).code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        # a small gzip body that inflates past the limit (a gzip bomb) is refused the same way
        bomb = gzip.compress(b"\x00" * (10 * 1024 * 1024))
        assert len(bomb) < 64 * 1024
        r = httpx.post(http_url(receiver), content=bomb, headers={**PB, "content-encoding": "gzip"})
        assert r.status_code == 413
        for compression in (None, grpc.Compression.Gzip):
            with pytest.raises(grpc.RpcError) as err:
                grpc_raw(receiver, big, compression=compression)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        ok = request([log_record(audit_attrs(padding="x" * 30_000))]).SerializeToString()
        assert httpx.post(http_url(receiver), content=ok, headers=PB).status_code == 200
        assert store.count(EventFilter()) == 1
    finally:
        receiver.stop_listeners()


def test_grpc_undecodable_payload_is_invalid_argument(receiver):
    with pytest.raises(grpc.RpcError) as err:
        grpc_raw(receiver, b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_tokens_fix_the_tenant_on_both_transports(store):
    receiver = start_receiver(store, ingest_tokens=[{"token": TOKEN, "tenant": "acme"}])
    try:
        body = request(
            [
                log_record(audit_attrs(audit__tenant__id=None, enduser__id="implicit")),
                log_record(audit_attrs(audit__tenant__id="acme", enduser__id="explicit")),
                log_record(audit_attrs(audit__tenant__id="globex", enduser__id="forger")),
            ]
        ).SerializeToString()
        url = http_url(receiver)
        for headers in ({}, {"authorization": "Bearer wrong-token-0123456789"}, {"authorization": TOKEN}):
            r = httpx.post(url, content=body, headers={**PB, **headers})
            assert r.status_code == 401
            assert status_pb2.Status.FromString(r.content).code == grpc.StatusCode.UNAUTHENTICATED.value[0]
        for metadata in (None, (("authorization", "Bearer nope-0123456789abcdef"),)):
            with pytest.raises(grpc.RpcError) as err:
                grpc_raw(receiver, body, metadata=metadata)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert store.count(EventFilter()) == 0
        r = httpx.post(url, content=body, headers={**PB, "authorization": f"Bearer {TOKEN}"})
        answer = ExportLogsServiceResponse.FromString(r.content)
        assert answer.partial_success.rejected_log_records == 1
        assert "does not match the tenant of the ingest token" in answer.partial_success.error_message
        rows = store.search(EventFilter(), 10)
        assert sorted((row["tenant_id"], row["user_id"]) for row in rows) == [
            ("acme", "explicit"),
            ("acme", "implicit"),
        ]
        metrics = httpx.get(f"http://127.0.0.1:{receiver.admin_port}/metrics").text
        assert 'otel_audit_refused_requests_total{code="unauthenticated"} 5.0' in metrics
        assert 'otel_audit_rejected_events_total{reason="audit.tenant.id"} 1.0' in metrics
        assert TOKEN not in metrics
    finally:
        receiver.stop_listeners()


def test_grpc_health_service_reports_serving(receiver):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "opentelemetry.proto.collector.logs.v1.LogsService"):
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_http_requests_beyond_the_in_flight_bound_get_503(store):
    """Bodies are read before the writer queue can push back: a bound on requests in flight keeps
    slow uploads from piling up memory."""
    import asyncio

    from receiver.config import load_config
    from receiver.ingest import IngestConsumer
    from receiver.telemetry import ReceiverMetrics
    from receiver.transport.otlp_http import build_otlp_http_app
    from receiver.writer import GroupCommitWriter

    metrics = ReceiverMetrics()
    writer = GroupCommitWriter(store, metrics)
    app = build_otlp_http_app(IngestConsumer(load_config(None), writer, metrics), max_in_flight=1)
    body = request([log_record(audit_attrs())]).SerializeToString()

    async def scenario() -> tuple[int, httpx.Response, httpx.Response]:
        release = asyncio.Event()

        async def slow_body():
            yield body[:10]
            await release.wait()
            yield body[10:]

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rx") as client:
            slow = asyncio.create_task(client.post("/v1/logs", content=slow_body(), headers=PB))
            await asyncio.sleep(0.2)
            refused = await client.post("/v1/logs", content=body, headers=PB)
            release.set()
            return refused.status_code, refused, (await slow)

    try:
        code, refused, slow = asyncio.run(scenario())
    finally:
        writer.close()
    assert code == 503 and refused.headers["retry-after"] == "1" and slow.status_code == 200
    assert store.count(EventFilter()) == 1


def test_non_loopback_otlp_listeners_need_tokens():
    from receiver.config import ConfigError, load_config

    for flag in ("grpc_listen", "http_listen"):
        with pytest.raises(ConfigError, match="ingest_tokens"):
            load_config(None, **{flag: "0.0.0.0:4318"}).check_exposure()
        load_config(
            None, ingest_tokens=[{"token": TOKEN, "tenant": "acme"}], **{flag: "0.0.0.0:4318"}
        ).check_exposure()
