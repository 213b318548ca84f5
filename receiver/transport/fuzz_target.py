"""The decode → filter → validate → enrich path as one function over raw bytes, for fuzzers
(hypothesis in tests/, atheris in fuzz/). The contract it checks: any input ends as a decode
error (INVALID_ARGUMENT / 400) or a pipeline result whose counts add up and whose table the
store can take — never another exception, never a hang."""

from __future__ import annotations

from receiver import pipeline
from receiver.pipeline.auth import IngestIdentity
from receiver.pipeline.run import PipelineResult
from receiver.transport.errors import BadRequest
from receiver.transport.otlp_codec import decode_json, decode_protobuf


def ingest_bytes(data: bytes, as_json: bool = False, tenant: str | None = None) -> PipelineResult | None:
    """None when the payload is refused as undecodable; raises only on a contract breach."""
    try:
        request = decode_json(data) if as_json else decode_protobuf(data)
    except BadRequest:
        return None
    result = pipeline.run(request, IngestIdentity(tenant), lambda _tenant: 365)
    assert result.received == result.dropped_non_audit + result.rejected + result.accepted, result
    for row in result.table.to_pylist():
        assert row["id"] and row["tenant_id"] and row["created_at"] is not None
        if tenant is not None:
            assert row["tenant_id"] == tenant
        for value in row.values():
            if isinstance(value, str):
                value.encode("utf-8")  # storable: no lone surrogates
    return result
