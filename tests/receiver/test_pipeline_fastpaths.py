"""The pipeline's fast paths (canonical UUIDs kept as sent, plain strings passed through, the
tuple-wise Arrow conversion) give exactly what the general conversions give."""

from __future__ import annotations

import uuid

from otlp_builders import audit_attrs, log_record, request

from receiver import pipeline
from receiver.model import ARROW_SCHEMA
from receiver.pipeline.auth import OPEN
from receiver.pipeline.validate import MAX_VALUE_CHARS


def _run(records):
    return pipeline.run(request(records), OPEN, lambda _t: 30)


def test_uuid_spellings_are_canonicalised():
    u = uuid.uuid4()
    spellings = [str(u), str(u).upper(), "{" + str(u) + "}", u.hex, f"urn:uuid:{u}"]
    result = _run([log_record(audit_attrs(audit__event__id=s)) for s in spellings])
    assert result.rejected == 0
    assert result.table.column("id").to_pylist() == [str(u)] * len(spellings)


def test_non_string_and_bad_ids_are_rejected_with_their_repr():
    result = _run(
        [log_record(audit_attrs(audit__event__id=5)), log_record(audit_attrs(audit__event__id="nope"))]
    )
    assert result.accepted == 0
    assert result.reasons == [
        "record 0: audit.event.id '5' is not a UUID",
        "record 1: audit.event.id 'nope' is not a UUID",
    ]


def test_text_values_nul_long_and_non_string_kinds():
    long = "x" * (MAX_VALUE_CHARS + 5)
    attrs = audit_attrs(enduser__id="a\x00b", note=long, count=7, flag=True, ratio=0.5, raw=b"\x01\xff")
    result = _run([log_record(attrs)])
    row = result.table.to_pylist()[0]
    assert row["user_id"] == "a\ufffdb"
    extra = dict(row["attributes"])
    assert extra["note"] == "x" * MAX_VALUE_CHARS + "…[TRUNCATED]"
    assert (extra["count"], extra["flag"], extra["ratio"], extra["raw"]) == ("7", "true", "0.5", "01ff")
    assert result.table.schema == ARROW_SCHEMA


def test_empty_request_gives_an_empty_table_of_the_schema():
    result = _run([log_record({"other": "x"}, event_name="app.log")])
    assert result.table.num_rows == 0 and result.table.schema == ARROW_SCHEMA
    assert (result.received, result.dropped_non_audit) == (1, 1)
