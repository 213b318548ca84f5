"""A batch of raw OTLP protobuf bodies → per request what :func:`receiver.pipeline.run` gives
(its rows, counts, rejections), the common case column-wise, everything else by the reference
pipeline itself; a body that does not decode gets :class:`BadRequest`, as before."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from receiver import pipeline
from receiver.batching.columnar import decode_batch, run_batch
from receiver.pipeline import enrich
from receiver.pipeline.auth import IngestIdentity
from receiver.pipeline.enrich import RetainDays
from receiver.pipeline.run import PipelineResult
from receiver.pipeline.schemas import SchemaStage
from receiver.transport.errors import BadRequest
from receiver.transport.otlp_codec import decode_protobuf

log = logging.getLogger("otel_audit.receiver")

#: a request's result, BadRequest, or what the reference pipeline raised for it alone
Outcome = PipelineResult | Exception


def _reference(
    body: bytes,
    identity: IngestIdentity,
    retain_days: RetainDays,
    hot_days: RetainDays | None,
    schemas: SchemaStage | None,
) -> Outcome:
    try:
        request = decode_protobuf(body)
    except BadRequest as exc:
        return exc
    try:
        return pipeline.run(request, identity, retain_days, hot_days, schemas)
    except Exception as exc:  # noqa: BLE001 - e.g. a retention policy past the last date: this request's
        return exc


def process(
    bodies: Sequence[bytes],
    identities: Sequence[IngestIdentity],
    retain_days: RetainDays,
    hot_days: RetainDays | None = None,
    schemas: SchemaStage | None = None,
) -> list[Outcome]:
    """One outcome per body, in order; what the reference pipeline raises for a request is that
    request's outcome (a retention policy past the last date), not its batch's."""
    received_at = enrich.received_at_us(dt.datetime.now(dt.timezone.utc))
    batch = decode_batch(bodies)
    if batch is None:
        if len(bodies) == 1:  # the native decoder refuses it: the reference decides
            return [_reference(bodies[0], identities[0], retain_days, hot_days, schemas)]
        out: list[Outcome] = []
        for body, identity in zip(bodies, identities, strict=True):
            out += process([body], [identity], retain_days, hot_days, schemas)
        return out
    try:
        decoded = run_batch(
            bodies, batch, [i.tenant for i in identities], received_at, retain_days, hot_days, schemas
        )
    except Exception as exc:  # noqa: BLE001 - never worse than the reference: it takes every request
        log.error("column-wise ingest failed, the batch takes the per-request pipeline: %s", str(exc)[:500])
        return [
            _reference(b, i, retain_days, hot_days, schemas) for b, i in zip(bodies, identities, strict=True)
        ]
    out = []
    start = 0
    for i, body in enumerate(bodies):
        if decoded.fallback[i]:
            out.append(_reference(body, identities[i], retain_days, hot_days, schemas))
            continue
        rows = decoded.accepted[i]
        out.append(
            PipelineResult(
                table=decoded.table.slice(start, rows),
                received=decoded.received[i],
                dropped_non_audit=decoded.dropped[i],
            )
        )
        start += rows
    return out
