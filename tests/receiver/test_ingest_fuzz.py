"""Fuzzing decode → filter → validate → enrich: random bytes, mutated valid requests, generated
records with hostile values, random JSON — no crash, no hang, every outcome a spec status.
A bounded atheris round runs too when atheris is installed (``tests/fuzz/fuzz_ingest.py``)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import grpc
import httpx
import pytest
from delivery_support import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from otlp_builders import audit_attrs, log_record, request

from receiver.transport.fuzz_target import ingest_bytes

FUZZ = settings(
    max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

_scalars = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from("\x00\ufffd\u202e'\"\\\n\t{}[]é😀"), max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.binary(max_size=20),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_mapped_keys = st.sampled_from(
    [
        "audit.event.id",
        "audit.tenant.id",
        "enduser.id",
        "user.id",
        "audit.action",
        "audit.outcome",
        "audit.actor.type",
        "audit.resource.type",
        "audit.changes",
        "http.response.status_code",
        "event.name",
        "client.address",
    ]
)


def _valid_request_bytes(n: int = 3) -> bytes:
    return request(
        [log_record(audit_attrs(note="x" * i, nested={"a": [1, 2.5, True]})) for i in range(n)]
    ).SerializeToString()


SEED = _valid_request_bytes()


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(data):
    ingest_bytes(data)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(SEED) - 1),
            st.sampled_from(["flip", "drop", "insert"]),
            st.binary(min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_mutated_valid_requests(mutations):
    data = bytearray(SEED)
    for position, kind, payload in mutations:
        position %= max(len(data), 1)
        if kind == "flip" and data:
            data[position] ^= payload[0] or 1
        elif kind == "drop":
            del data[position : position + len(payload)]
        else:
            data[position:position] = payload
    ingest_bytes(bytes(data))


@FUZZ
@given(
    attrs=st.dictionaries(st.one_of(_mapped_keys, st.text(max_size=12)), _values, max_size=12),
    event_name=st.one_of(st.just("audit.fuzz.event"), st.text(max_size=20)),
    body=st.one_of(st.none(), _values),
    time_ns=st.one_of(st.just(0), st.integers(0, 2**64 - 1)),
    tenant=st.one_of(st.none(), st.just("acme")),
)
def test_generated_records_with_hostile_values(attrs, event_name, body, time_ns, tenant):
    base = audit_attrs()
    base.update(attrs)
    data = request([log_record(base, event_name=event_name, body=body, time_ns=time_ns)]).SerializeToString()
    ingest_bytes(data, tenant=tenant)


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                ["resourceLogs", "scopeLogs", "logRecords", "attributes", "key", "value", "stringValue"]
                + ["kvlistValue", "values", "traceId", "spanId", "timeUnixNano", "eventName", "body"]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=25,
)


@FUZZ
@given(_json)
def test_random_otlp_json(doc):
    ingest_bytes(json.dumps(doc).encode(), as_json=True)


@settings(max_examples=25, deadline=5000, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_transports_answer_only_spec_statuses(receiver, data):
    """Mutated payloads through the real servers: HTTP 200/400 and gRPC OK/INVALID_ARGUMENT only."""
    body = bytearray(SEED)
    for _ in range(data.draw(st.integers(1, 4))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    r = httpx.post(
        f"http://127.0.0.1:{receiver.http_port}/v1/logs",
        content=bytes(body),
        headers={"content-type": "application/x-protobuf"},
        timeout=30,
    )
    assert r.status_code in (200, 400)
    with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
        call = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
        try:
            call(bytes(body), timeout=30)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
@pytest.mark.parametrize("mode", ["protobuf", "json"])
def test_atheris_bounded_round(tmp_path, mode):
    """Coverage-guided, from a corpus of valid requests (atheris mutates them)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    if mode == "json":
        from google.protobuf import json_format

        doc = json_format.MessageToDict(request([log_record(audit_attrs(nested={"a": [1, "b"]}))]))
        (corpus / "seed.json").write_text(json.dumps(doc))
    else:
        (corpus / "seed.pb").write_bytes(SEED)
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "fuzz" / "fuzz_ingest.py"),
            "-runs=20000",
            "-max_len=8192",
            str(corpus),
        ]
        + (["--json"] if mode == "json" else []),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 20000 runs" in proc.stderr
