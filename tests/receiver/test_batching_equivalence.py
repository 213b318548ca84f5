"""The batching path (receiver/batching: native decode, column-wise fast path, the reference
pipeline for any request it cannot decide) gives, request by request, exactly what
``pipeline.run`` gives: the same rows (every column), counts, rejection reasons and
partial-success text — on the equivalence corpus of test_pipeline_equivalence.py, on
hypothesis-generated batches of requests, and for bodies that do not decode."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any
from unittest import mock

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from test_pipeline_equivalence import (
    _FIXED_DT,
    EDGE_OVERRIDES,
    RECENT_NS,
    WINDOW_EDGES,
    _changes_text,
    _hot,
    _plain,
    _record,
    _request,
    _retain,
    records,
    run_module,
)

from receiver import pipeline
from receiver.batching import columnar, process
from receiver.model import ARROW_SCHEMA
from receiver.pipeline.auth import OPEN, IngestIdentity
from receiver.transport.errors import BadRequest

process_module = process
TOKEN = IngestIdentity(tenant="acme")


def _reference(body: bytes, identity: IngestIdentity, hot: bool) -> Any:
    try:
        request = ExportLogsServiceRequest.FromString(body)
    except Exception:  # noqa: BLE001 - an undecodable body: BadRequest on the new side
        return "bad request"
    try:
        return pipeline.run(request, identity, _retain, _hot if hot else None)
    except Exception as exc:  # noqa: BLE001 - both sides must fail the same way
        return ("raised", type(exc), str(exc))


def assert_same_batch(
    bodies: list[bytes], identities: list[IngestIdentity], hot: bool = True, fast: int | None = None
) -> list[Any]:
    """Every request's outcome on both sides, at one fixed clock; ``fast``: how many requests
    must have taken the column-wise path."""
    taken = []
    real = columnar.run_batch

    errors: list[Exception] = []

    def spy(*args: Any, **kw: Any) -> Any:
        try:
            decoded = real(*args, **kw)
        except Exception as exc:  # the fallback would hide a broken fast path: fail instead
            errors.append(exc)
            raise
        taken.append(decoded.fallback.count(False))
        return decoded

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(run_module, "dt", _FIXED_DT))
        stack.enter_context(mock.patch.object(process_module, "dt", _FIXED_DT))
        stack.enter_context(mock.patch.object(process_module, "run_batch", spy))
        want = [_reference(b, i, hot) for b, i in zip(bodies, identities, strict=True)]
        got: list[Any] = process.process(bodies, identities, _retain, _hot if hot else None)
    assert not errors, errors
    for g, w in zip(got, want, strict=True):
        if w == "bad request":
            assert isinstance(g, BadRequest)
            continue
        if isinstance(w, tuple):  # the reference raised: that request's outcome, not its batch's
            assert ("raised", type(g), str(g)) == w
            continue
        assert not isinstance(g, BadRequest), (g, w)
        assert g.table.schema == ARROW_SCHEMA
        assert g.table.to_pylist() == w.table.to_pylist()
        assert g.table.equals(w.table)
        assert (g.received, g.dropped_non_audit, g.rejected) == (w.received, w.dropped_non_audit, w.rejected)
        assert g.reasons == w.reasons and g.error_message() == w.error_message()
        assert g.rejected_by_reason == w.rejected_by_reason
        assert g.tenant_mismatches == w.tenant_mismatches and g.schema_counts == w.schema_counts
    if fast is not None:
        assert sum(taken) == fast, taken
    return got


def test_the_bench_shape_takes_the_fast_path():
    bodies = [
        _request([("billing", [_record(_plain(i + 100 * r)) for i in range(20)])]).SerializeToString()
        for r in range(3)
    ]
    assert_same_batch(bodies, [OPEN, TOKEN, OPEN], fast=3)
    assert_same_batch(bodies, [OPEN] * 3, hot=False, fast=3)


@pytest.mark.parametrize("over", EDGE_OVERRIDES, ids=range(len(EDGE_OVERRIDES)))
def test_edge_values_in_a_batch(over: dict[str, Any]):
    plain = _request([("svc", [_record(_plain(0))])]).SerializeToString()
    odd = _request([("svc", [_record(_plain(0)), _record(_plain(1, **over))])]).SerializeToString()
    for identity in (OPEN, TOKEN):
        assert_same_batch([plain, odd, plain], [identity] * 3)


def test_bodies_that_do_not_decode_fail_alone():
    good = _request([("svc", [_record(_plain(0))])]).SerializeToString()
    bad_utf8 = good.replace(b"svc", b"\xff\xfe\xfd")
    assert_same_batch([good, b"\x0a\x05abc", bad_utf8, good, b""], [OPEN] * 5)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.lists(st.lists(records(), min_size=0, max_size=4), min_size=0, max_size=3), min_size=1, max_size=4
    ),
    st.lists(st.sampled_from([OPEN, TOKEN, IngestIdentity(tenant="t" * 300)]), min_size=4, max_size=4),
    st.booleans(),
)
def test_generated_batches(requests: list[list[list[Any]]], identities: list[IngestIdentity], hot: bool):
    bodies = [
        _request([(f"svc-{i}", recs) for i, recs in enumerate(batches)]).SerializeToString()
        for batches in requests
    ]
    assert_same_batch(bodies, identities[: len(bodies)], hot)


def test_a_request_the_reference_raises_on_fails_alone():
    # an event of NOW under a policy past the last date: the reference raises OverflowError
    doomed = _request([("svc", [_record(_plain(0, audit__tenant__id="x" * 40))])]).SerializeToString()
    fine = _request([("svc", [_record(_plain(1))])]).SerializeToString()

    def retain(tenant: str) -> int:
        return 3_000_000 if len(tenant) == 40 else 30

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(run_module, "dt", _FIXED_DT))
        stack.enter_context(mock.patch.object(process_module, "dt", _FIXED_DT))
        got = process.process([fine, doomed, fine], [OPEN] * 3, retain)
    assert isinstance(got[1], OverflowError)
    assert got[0].accepted == got[2].accepted == 1


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=30), st.integers(1, 3))
def test_generated_plain_batches_take_the_fast_path(ids: list[int], requests: int):
    bodies = [
        _request([("svc", [_record(_plain(i + r * 10**7)) for i in ids])]).SerializeToString()
        for r in range(requests)
    ]
    assert_same_batch(bodies, [OPEN] * requests, fast=requests)
    assert pa  # noqa: B018


@st.composite
def common_records(draw: st.DrawFn) -> Any:
    """Records of the common shape with the variations the fast path itself decides: change
    sets, extra attributes, bodies, ids, methods, statuses, times, the user-id alias."""
    attrs = _plain(draw(st.integers(0, 10**6)))
    if draw(st.booleans()):
        attrs = [(k, draw(_changes_text)) if k == "audit.changes" else (k, v) for k, v in attrs]
    for key in draw(
        st.lists(st.sampled_from(["note", "x.count", "enduser.id", "http.request.method"]), max_size=3)
    ):
        if key == "enduser.id":
            attrs = [(k, v) for k, v in attrs if k != key] + [("user.id", draw(st.text(max_size=8)))]
        elif key == "http.request.method":
            attrs.append((key, draw(st.sampled_from(["get", "POST", "patch", "ß", "x" * 17]))))
        else:
            attrs.append((key, draw(st.one_of(st.text(max_size=12), st.integers(-(2**63), 2**63 - 1)))))
    fields: dict[str, Any] = {}
    if draw(st.booleans()):
        fields["body"] = draw(st.one_of(st.text(max_size=12), st.integers(-(2**63), 2**63 - 1)))
    if draw(st.booleans()):
        fields["trace_id"] = draw(st.binary(min_size=15, max_size=17))
        fields["span_id"] = draw(st.binary(min_size=7, max_size=9))
    if draw(st.integers(0, 4)) == 0:
        fields["time_ns"] = draw(st.sampled_from(WINDOW_EDGES))
    status = draw(st.one_of(st.none(), st.integers(-5, 70_000)))
    if status is not None:
        attrs = [(k, status) if k == "http.response.status_code" else (k, v) for k, v in attrs]
    return _record(attrs, **fields)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(common_records(), min_size=1, max_size=5), min_size=1, max_size=4),
    st.sampled_from([OPEN, TOKEN]),
)
def test_generated_common_shape(requests: list[list[Any]], identity: IngestIdentity):
    bodies = [_request([("svc", recs)]).SerializeToString() for recs in requests]
    assert_same_batch(bodies, [identity] * len(bodies))


_SEED = _request(
    [
        (
            "svc",
            [_record(_plain(1), body="why"), _record(_plain(2)), _record([("x", "y")], event_name="app.log")],
        )
    ]
).SerializeToString()


@example(mutations=[(425, "set", 0)])  # a key's length byte cut: an attribute with no value set
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(_SEED) - 1), st.sampled_from(["set", "insert", "delete"]), st.integers(0, 255)
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_bodies_decode_as_upb_decides(mutations: list[tuple[int, str, int]]):
    """Both decoders on damaged bytes: a body upb refuses is refused, one it reads gives the
    reference's rows — the native decoder never accepts what upb does not, or reads it otherwise."""
    data = bytearray(_SEED)
    for position, kind, byte in mutations:
        position %= max(1, len(data))
        if kind == "set":
            data[position] = byte
        elif kind == "insert":
            data.insert(position, byte)
        else:
            del data[position]
    assert_same_batch([bytes(data), _SEED], [OPEN, OPEN])


def _merged_record(*parts: LogRecord) -> bytes:
    """A request whose one record is the concatenation of ``parts`` on the wire: protobuf merges
    them (scalars and oneofs: the last wins; messages: merged; repeated: appended)."""
    return _wrap(b"".join(p.SerializeToString() for p in parts))


def _wrap(record: bytes) -> bytes:
    """A request of one record given as its wire bytes."""
    scope = b"\x12" + _varint(len(record)) + record  # ScopeLogs.log_records = 2
    resource_logs = b"\x12" + _varint(len(scope)) + scope  # ResourceLogs.scope_logs = 2
    return b"\x0a" + _varint(len(resource_logs)) + resource_logs  # request.resource_logs = 1


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


@pytest.mark.parametrize(
    ("parts", "fast"),
    [
        ([_record(_plain(1), body="first"), LogRecord(body=AnyValue())], 1),
        # two kinds of one oneof on the wire: upb keeps the last, the fast path leaves it to upb
        ([_record(_plain(1), body="first"), LogRecord(body=AnyValue(int_value=3))], 0),
        ([_record(_plain(1), body=5), LogRecord(body=AnyValue(string_value="second"))], 0),
        ([_record(_plain(1)), LogRecord(event_name="audit.other", time_unix_nano=RECENT_NS + 5)], 1),
        ([_record(_plain(1)), LogRecord(trace_id=b"\x07" * 16)], 1),
    ],
    ids=range(5),
)
def test_records_merged_on_the_wire(parts: list[LogRecord], fast: int):
    assert_same_batch([_merged_record(*parts)], [OPEN], fast=fast)


def _with_raw_attribute(value: bytes) -> bytes:
    """A request whose one record carries an extra attribute ``x`` with the AnyValue bytes given."""
    record = _record(_plain(1)).SerializeToString()
    key_value = b"\x0a\x01x" + b"\x12" + _varint(len(value)) + value  # KeyValue.key = 1, .value = 2
    return _wrap(record + b"\x32" + _varint(len(key_value)) + key_value)


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        (b"\x2a\x02\xff\xff", True),  # array_value whose bytes are no ArrayValue: upb refuses the body
        (b"\x32\x03\x0a\x01\xff", True),  # kvlist_value holding a key that is not UTF-8
        (b"\x2a\x04\x0a\x02\x0a\x00", False),  # array_value ["" ]: well formed, the reference's rows
        (b"\x32\x00", False),  # an empty kvlist_value
    ],
    ids=["bad-array", "bad-kvlist", "array", "empty-kvlist"],
)
def test_nested_values_are_decided_by_upb(value: bytes, refused: bool):
    """The decode schema reads AnyValue's nested kinds as bytes: a request holding one takes the
    reference path, so nested bytes upb refuses are refused, and good ones give upb's rows."""
    body = _with_raw_attribute(value)
    got = assert_same_batch([body, _SEED], [OPEN, OPEN])
    assert isinstance(got[0], BadRequest) is refused


def test_dropped_fields_are_still_framed():
    """Fields the decode schema drops (LogRecord.flags, severity_number) are skipped as unknown
    fields: a cut field still makes the body undecodable on both sides, and dropped fields
    (severity_number 9, dropped_attributes_count sent with the wrong wire type) change nothing."""
    good = _with_raw_attribute(b"\x0a\x01v")
    cut = good + b"\x45\x01\x00"  # a fixed32 field cut short at the end of the body
    assert isinstance(assert_same_batch([cut], [OPEN])[0], BadRequest)
    record = _record(_plain(2)).SerializeToString() + b"\x10\x09" + b"\x3d\x01\x00\x00\x00"
    assert_same_batch([_wrap(record)], [OPEN], fast=1)
