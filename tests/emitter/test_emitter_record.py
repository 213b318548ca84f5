"""record(), the helpers and the request context, through a real SDK LoggerProvider."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from emitter_support import (
    Captured,
    captured_fixture,  # noqa: F401  (the `captured` fixture)
)
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk.trace import TracerProvider

import otel_audit
from otel_audit import attributes as attr
from otel_audit.context import EMPTY_CONTEXT
from otel_audit.source import SOURCE


def test_record_emits_spec_attributes_and_event_name(captured: Captured) -> None:
    before_ns = time.time_ns()
    event_id = otel_audit.record(
        action="update",
        resource_type="document",
        resource_id="doc-7",
        before={"title": "a", "owner": "bob"},
        after={"title": "b", "owner": "bob"},
        reason="typo fixed",
        user_id="alice",
        tenant_id="acme",
        ip_address="198.51.100.4",
        user_agent="curl/8",
        session_id="s-1",
    )
    rec = captured.one()
    assert rec.event_name == "audit.document.update"
    assert rec.body == "typo fixed"
    assert rec.severity_number == SeverityNumber.INFO
    assert before_ns <= rec.timestamp <= time.time_ns()
    assert uuid.UUID(event_id).version == 4
    attrs = dict(rec.attributes)
    changes = json.loads(attrs.pop(attr.CHANGES))
    assert changes == {"title": {"old": "a", "new": "b"}}
    # the process's source stamp: its id, and a number one higher than the previous event's
    source = attrs.pop(attr.SOURCE_ID)
    assert source.startswith(f"{SOURCE.id}.") and len(SOURCE.id) == 16
    seq = attrs.pop(attr.SOURCE_SEQ)
    otel_audit.record(action="read", resource_type="document", resource_id="doc-7", tenant_id="acme")
    assert (
        captured.records()[-1].attributes[attr.SOURCE_ID],
        captured.records()[-1].attributes[attr.SOURCE_SEQ],
    ) == (
        source,
        seq + 1,
    )
    # another tenant's events are numbered on their own (the receiver checks per tenant)
    otel_audit.record(action="read", resource_type="document", resource_id="doc-7", tenant_id="globex")
    other = captured.records()[-1].attributes
    assert other[attr.SOURCE_ID] != source and other[attr.SOURCE_ID].startswith(f"{SOURCE.id}.")
    assert attrs == {
        attr.EVENT_ID: event_id,
        attr.ACTION: "update",
        attr.RESOURCE_TYPE: "document",
        attr.RESOURCE_ID: "doc-7",
        attr.OUTCOME: "success",
        attr.USER_ID: "alice",
        attr.TENANT_ID: "acme",
        attr.ACTOR_TYPE: "user",
        attr.CLIENT_ADDRESS: "198.51.100.4",
        attr.USER_AGENT: "curl/8",
        attr.SESSION_ID: "s-1",
    }


def test_each_event_gets_a_fresh_id_and_minimal_defaults(captured: Captured) -> None:
    ids = {otel_audit.record(action="read", resource_type="report", resource_id=i) for i in range(3)}
    assert len(ids) == 3 and "" not in ids
    first = captured.attrs()[0]
    assert first[attr.RESOURCE_ID] == "0"  # non-str ids are stringified
    assert first[attr.USER_ID] == "" and first[attr.ACTOR_TYPE] == "user"
    assert attr.CHANGES not in first and attr.TENANT_ID not in first
    assert captured.records()[0].body is None


def test_unchanged_before_after_adds_no_changes_attribute(captured: Captured) -> None:
    otel_audit.record(action="update", resource_type="doc", before={"a": 1}, after={"a": 1})
    assert attr.CHANGES not in captured.one().attributes


def test_explicit_changes_are_redacted(captured: Captured) -> None:
    otel_audit.record(
        action="update",
        resource_type="user",
        resource_id="u1",
        changes={
            "email": {"old": "a@x", "new": "b@x"},
            "Password": {"old": "p1", "new": "p2"},
            "plan": "pro",
        },
    )
    changes = json.loads(captured.one().attributes[attr.CHANGES])
    assert changes == {
        "email": {"old": "a@x", "new": "b@x"},
        "Password": {"old": "[REDACTED]", "new": "[REDACTED]"},
        "plan": {"old": None, "new": "pro"},
    }


def test_context_is_inherited_and_layered(captured: Captured) -> None:
    assert otel_audit.current_context() == EMPTY_CONTEXT
    with otel_audit.audit_context(user_id="alice", tenant_id="acme", http_method="POST"):
        with otel_audit.audit_context(tenant_id="globex", user_id=None) as inner:
            assert inner.user_id == "alice" and inner.tenant_id == "globex"
            otel_audit.record(action="export", resource_type="report", resource_id="q3")
        otel_audit.record(
            action="export", resource_type="report", resource_id="q4", user_id="", actor_type="system"
        )
    assert otel_audit.current_context() == EMPTY_CONTEXT
    first, second = captured.attrs()
    assert (first[attr.USER_ID], first[attr.TENANT_ID], first[attr.HTTP_METHOD]) == (
        "alice",
        "globex",
        "POST",
    )
    # explicit keywords win over the context, "" included
    assert (second[attr.USER_ID], second[attr.TENANT_ID], second[attr.ACTOR_TYPE]) == ("", "acme", "system")


def test_extra_attributes(captured: Captured) -> None:
    otel_audit.record(
        action="execute",
        resource_type="job",
        resource_id="j1",
        attributes={"job.kind": "nightly", "api_key": "k-123", "job.meta": {"retries": 2}},
        priority=3,
        tags=["a", "b"],
    )
    attrs = captured.attrs()[0]
    assert attrs["job.kind"] == "nightly"
    assert attrs["api_key"] == "[REDACTED]"
    assert json.loads(attrs["job.meta"]) == {"retries": 2}
    assert attrs["priority"] == 3
    assert list(attrs["tags"]) == ["a", "b"]


def test_trace_context_comes_from_the_current_span(captured: Captured) -> None:
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("op") as span:
        otel_audit.record(action="read", resource_type="doc", resource_id="1")
    rec = captured.one()
    assert rec.trace_id == span.get_span_context().trace_id != 0
    assert rec.span_id == span.get_span_context().span_id


class _BrokenLogger:
    def emit(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("exporter on fire")


class _BrokenProvider:
    def get_logger(self, *args: Any, **kwargs: Any) -> _BrokenLogger:
        return _BrokenLogger()


def test_record_never_raises() -> None:
    otel_audit.configure(logger_provider=_BrokenProvider())  # type: ignore[arg-type]
    try:
        errors = otel_audit.stats().errors
        # built on this thread, handed to the SDK on the deferred worker: the SDK's failure is
        # counted there, the id was already returned
        assert otel_audit.record(action="read", resource_type="doc", resource_id="1") != ""
        assert otel_audit.record(action="", resource_type="doc") == ""
        assert otel_audit.record(action="update", resource_type="doc", before="not a dict") == ""  # type: ignore[arg-type]
        otel_audit.force_flush()
        stats = otel_audit.stats()
        assert stats.errors == errors + 3
        assert stats.last_error is not None
    finally:
        otel_audit.shutdown()


def test_helpers(captured: Captured) -> None:
    otel_audit.login_success("alice", tenant_id="acme")
    otel_audit.login_failure("mallory", reason="bad password")
    otel_audit.login_failure(reason="unknown user")
    with otel_audit.audit_context(user_id="alice"):
        otel_audit.logout()
        otel_audit.sensitive_read("patient", "p1", fields=["ssn", "diagnosis"])
        otel_audit.created("document", "d1", after={"title": "x"})
        otel_audit.deleted("document", "d1", before={"title": "x"})
        otel_audit.updated("document", "d1", before={"title": "x"}, after={"title": "y"})
        otel_audit.permission_granted("role", "editor", permission="documents:write", grantee="bob")
        otel_audit.permission_revoked("role", "editor", permission="documents:write", grantee="bob")
    recs = captured.records()
    names = [r.event_name for r in recs]
    assert names == [
        "audit.user.login",
        "audit.user.login",
        "audit.user.login",
        "audit.user.logout",
        "audit.patient.read",
        "audit.document.create",
        "audit.document.delete",
        "audit.document.update",
        "audit.role.grant",
        "audit.role.revoke",
    ]
    a = [dict(r.attributes) for r in recs]
    assert (a[0][attr.USER_ID], a[0][attr.OUTCOME], a[0][attr.TENANT_ID]) == ("alice", "success", "acme")
    assert (a[1][attr.USER_ID], a[1][attr.RESOURCE_ID], a[1][attr.OUTCOME]) == (
        "mallory",
        "mallory",
        "failure",
    )
    assert recs[1].body == "bad password"
    assert a[2][attr.USER_ID] == "" and a[2][attr.OUTCOME] == "failure"
    assert (a[3][attr.USER_ID], a[3][attr.RESOURCE_ID]) == ("alice", "alice")
    assert list(a[4][attr.FIELDS]) == ["ssn", "diagnosis"] and a[4][attr.ACTION] == "read"
    assert json.loads(a[5][attr.CHANGES]) == {"title": {"old": None, "new": "x"}}
    assert json.loads(a[6][attr.CHANGES]) == {"title": {"old": "x", "new": None}}
    assert json.loads(a[7][attr.CHANGES]) == {"title": {"old": "x", "new": "y"}}
    assert (a[8][attr.PERMISSION], a[8][attr.GRANTEE], a[8][attr.ACTION]) == (
        "documents:write",
        "bob",
        "grant",
    )
    assert a[9][attr.ACTION] == "revoke"
