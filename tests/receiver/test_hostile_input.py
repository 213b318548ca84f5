"""Hostile input: each case of the README "Limits" table has its defined treatment, checked here
through the real pipeline, the real transports and the real store."""

from __future__ import annotations

import datetime as dt
import json

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from otlp_builders import audit_attrs, export, log_record, request

from receiver.filters import EventFilter
from receiver.pipeline import run
from receiver.pipeline.auth import OPEN
from receiver.pipeline.validate import MAX_ATTRIBUTES, MAX_VALUE_CHARS
from receiver.transport.errors import BadRequest
from receiver.transport.otlp_codec import decode_protobuf

TRUNCATED = "…[TRUNCATED]"


def _len_field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field, by hand (to build what the generated code refuses to)."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def nested_array(depth: int) -> bytes:
    """AnyValue bytes: ``depth`` arrays, each holding the next, around a string."""
    value = AnyValue(string_value="bottom").SerializeToString()
    for _ in range(depth):
        value = _len_field(5, _len_field(1, value))  # AnyValue.array_value{values: [value]}
    return value


def request_with_raw_attribute(key: str, value_bytes: bytes) -> bytes:
    """A valid one-record audit request plus one attribute whose AnyValue bytes are given raw."""
    record = log_record(audit_attrs()).SerializeToString()
    record += _len_field(6, _len_field(1, key.encode()) + _len_field(2, value_bytes))  # attributes
    scope_logs = _len_field(2, record)
    resource_logs = _len_field(2, scope_logs)
    return _len_field(1, resource_logs)


def one_row(store) -> dict:
    (row,) = store.search(EventFilter(), 10)
    return row


def test_megabyte_values_are_cut_with_a_marker(receiver, store):
    huge = "v" * 2_000_000
    export(f"127.0.0.1:{receiver.grpc_port}", request([log_record(audit_attrs(note=huge), body=huge)]))
    row = one_row(store)
    assert row["attributes"]["note"] == "v" * MAX_VALUE_CHARS + TRUNCATED
    assert row["reason"] == "v" * MAX_VALUE_CHARS + TRUNCATED


def test_ten_thousand_attributes_keep_the_first_256_and_count_the_rest(receiver, store):
    attrs = audit_attrs(**{f"extra_{i:05d}": i for i in range(10_000)})
    response = export(f"127.0.0.1:{receiver.grpc_port}", request([log_record(attrs)]))
    assert not response.HasField("partial_success")
    kept = one_row(store)["attributes"]
    assert kept.pop("otel_audit.dropped_attributes") == str(10_000 - MAX_ATTRIBUTES)
    assert sorted(kept) == [f"extra_{i:05d}" for i in range(MAX_ATTRIBUTES)]


def test_deep_kvlists_are_cut_and_too_deep_to_decode_is_invalid_argument(receiver, store):
    deep: dict = {"leaf": "x"}
    for level in range(20):  # 60 message levels: decodable (upb stops at 100)
        deep = {f"l{level}": deep}
    export(f"127.0.0.1:{receiver.grpc_port}", request([log_record(audit_attrs(nested=deep))]))
    stored = one_row(store)["attributes"]["nested"]
    assert "[TRUNCATED: nested too deep]" in stored and len(stored) < 200
    body = request_with_raw_attribute("abyss", nested_array(500))
    with pytest.raises(BadRequest):
        decode_protobuf(body)
    r = httpx.post(
        f"http://127.0.0.1:{receiver.http_port}/v1/logs",
        content=body,
        headers={"content-type": "application/x-protobuf"},
    )
    assert r.status_code == 400
    assert store.count(EventFilter()) == 1


def test_invalid_utf8_is_an_undecodable_request(receiver, store):
    marker = "Q7Q7"
    body = request([log_record(audit_attrs(enduser__id=marker))]).SerializeToString()
    body = body.replace(marker.encode(), b"\xff\xfe\xfd\xfc")
    with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
        call = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
        with pytest.raises(grpc.RpcError) as err:
            call(body, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    r = httpx.post(
        f"http://127.0.0.1:{receiver.http_port}/v1/logs",
        content=b'{"resourceLogs": [{"x": "\xff\xfe"}]}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert store.count(EventFilter()) == 0


def test_nul_bytes_are_replaced_or_escaped(receiver, store):
    attrs = audit_attrs(enduser__id="al\x00ice", note="a\x00b")
    attrs["audit.changes"] = json.dumps({"f": {"old": "x\x00", "new": "y"}})
    attrs["key\x00with_nul"] = "v"
    export(f"127.0.0.1:{receiver.grpc_port}", request([log_record(attrs, body="why\x00")]))
    row = one_row(store)
    assert row["user_id"] == "al\ufffdice" and row["reason"] == "why\ufffd"
    assert row["attributes"]["note"] == "a\ufffdb" and "key\ufffdwith_nul" in row["attributes"]
    assert row["changes"] == {"f": {"old": "x\x00", "new": "y"}}  # kept exactly, as JSON \u0000


def test_timestamps_zero_and_year_2300(receiver, store):
    observed_only = log_record(audit_attrs(enduser__id="observed"), time_ns=0)
    observed_only.observed_time_unix_nano = int(
        (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)).timestamp() * 1e9
    )
    year_2300 = int(dt.datetime(2300, 1, 1, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    response = export(
        f"127.0.0.1:{receiver.grpc_port}",
        request(
            [
                log_record(audit_attrs(enduser__id="zero"), time_ns=0),
                log_record(audit_attrs(enduser__id="future"), time_ns=year_2300),
                observed_only,
            ]
        ),
    )
    assert response.partial_success.rejected_log_records == 2
    message = response.partial_success.error_message
    assert "time_unix_nano is 0" in message and "after 2299-12-31" in message
    assert one_row(store)["user_id"] == "observed"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("not-a-uuid", None),
        ("", None),
        ("123", None),
        ("' OR 1=1 --", None),
        ("6F9619FF-8B86-D011-B42D-00C04FC964FF", "6f9619ff-8b86-d011-b42d-00c04fc964ff"),
        ("{6f9619ff-8b86-d011-b42d-00c04fc964ff}", "6f9619ff-8b86-d011-b42d-00c04fc964ff"),
        ("6f9619ff8b86d011b42d00c04fc964ff", "6f9619ff-8b86-d011-b42d-00c04fc964ff"),
    ],
)
def test_event_ids_must_be_uuids_and_are_stored_canonical(given, stored):
    result = run(request([log_record(audit_attrs(audit__event__id=given))]), OPEN, lambda _t: 365)
    if stored is None:
        assert result.rejected == 1 and result.accepted == 0
        assert "audit.event.id" in result.reasons[0]
    else:
        assert result.table.column("id").to_pylist() == [stored]


def test_huge_attribute_keys_and_event_names_are_cut():
    attrs = audit_attrs()
    attrs["k" * 5000] = "v"
    result = run(request([log_record(attrs, event_name="audit." + "n" * 5000)]), OPEN, lambda _t: 365)
    row = result.table.to_pylist()[0]
    assert len(row["event_name"]) == 256 + len(TRUNCATED)
    (key,) = [k for k, _ in row["attributes"]]
    assert key == "k" * 256 + TRUNCATED


def test_a_large_batch_in_one_request_is_processed_whole(receiver, store):
    records = [log_record(audit_attrs(enduser__id=f"u{i}")) for i in range(5000)]
    export(f"127.0.0.1:{receiver.grpc_port}", request(records))
    assert store.count(EventFilter()) == 5000


def test_empty_and_non_audit_requests_are_accepted(receiver, store):
    assert not export(f"127.0.0.1:{receiver.grpc_port}", ExportLogsServiceRequest()).HasField(
        "partial_success"
    )
    kv = KeyValue(key="event.name", value=AnyValue(int_value=7))
    odd = log_record({}, event_name="")
    odd.attributes.append(kv)
    assert not export(f"127.0.0.1:{receiver.grpc_port}", request([odd])).HasField("partial_success")
    assert store.count(EventFilter()) == 0
