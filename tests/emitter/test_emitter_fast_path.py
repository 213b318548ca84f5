"""The middleware's fast event path and read-ahead event ids behave exactly like the plain ones."""

from __future__ import annotations

import os
import uuid
from functools import partial
from typing import Any

import pytest
from emitter_support import Captured
from emitter_support import captured_fixture as captured_fixture  # noqa: F401  (the `captured` fixture)

from otel_audit.context import AuditContext, audit_context, reset_context, set_context
from otel_audit.recorder import new_event_id, record, record_request

CONTEXTS = [
    AuditContext(),
    AuditContext(user_id="u0", actor_type="service", ip_address="198.51.100.1", http_method="GET"),
    AuditContext(tenant_id="t0", user_agent="ua", session_id="s1", route_resolver=lambda: "/from/resolver"),
    AuditContext(http_status=418, route_resolver=lambda: None),
    AuditContext(http_route="/ctx/route", http_status=201, route_resolver=lambda: "/ignored"),
]
CALLS = [
    dict(user_id="alice", tenant_id="acme", http_route="/invoices/{id}", http_status=200),
    dict(user_id=None, tenant_id=None, http_route="/raw/path", http_status=None),
    dict(user_id="", tenant_id="t9", http_route="/x", http_status=500),
]


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("kw", CALLS)
def test_record_request_equals_record(captured: Captured, context: AuditContext, kw: dict[str, Any]) -> None:
    token = set_context(context)
    try:
        with audit_context(session_id="layered" if context.session_id is None else None):
            first = record(
                action="read", resource_type="invoice", resource_id="i1", outcome="denied", reason="why", **kw
            )
            second = record_request("read", "invoice", "i1", "denied", "why", **kw)
    finally:
        reset_context(token)
    plain, fast = captured.records()
    assert first and second and first != second
    a, b = dict(plain.attributes), dict(fast.attributes)
    assert a.pop("audit.event.id") == first and b.pop("audit.event.id") == second
    assert b.pop("audit.source.seq") == a.pop("audit.source.seq") + 1  # numbered in emission order
    assert list(a.items()) == list(b.items())  # same values, same order
    assert (plain.body, plain.event_name, plain.severity_number, plain.severity_text) == (
        fast.body,
        fast.event_name,
        fast.severity_number,
        fast.severity_text,
    )


def test_known_context_route_is_written_where_the_resolver_answer_goes(captured: Captured) -> None:
    context = AuditContext(tenant_id=None, route_resolver=lambda: "/a/{id}")
    token = set_context(context)
    try:
        record(action="read", resource_type="doc", tenant_id="t", http_route="/a/{id}", http_status=200)
        record_request("read", "doc", "", "success", None, None, "t", "/a/{id}", 200, context_route="/a/{id}")
    finally:
        reset_context(token)
    plain, fast = (dict(r.attributes) for r in captured.records())
    del plain["audit.event.id"], fast["audit.event.id"], plain["audit.source.seq"], fast["audit.source.seq"]
    assert list(plain.items()) == list(fast.items())


def test_record_request_never_raises(captured: Captured) -> None:
    def broken() -> str:
        raise RuntimeError("resolver")

    assert record_request("", "invoice", "i1", "success", None, None, None, "/r", None) == ""
    token = set_context(AuditContext(route_resolver=partial(broken)))
    try:  # like record(): a context whose route resolver raises loses the event, quietly
        assert record(action="read", resource_type="invoice", http_route="/r") == ""
        assert record_request("read", "invoice", "i1", "success", None, None, None, "/r", None) == ""
        assert record_request("read", "invoice", "i1", "success", None, None, None, "/r", None, "/r") != ""
    finally:
        reset_context(token)
    assert len(captured.records()) == 1


def test_forked_child_does_not_reuse_read_ahead_ids() -> None:
    new_event_id()  # the parent now holds ids read ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.write(write, ",".join(new_event_id() for _ in range(200)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split(",")
    os.waitpid(pid, 0)
    parent = [new_event_id() for _ in range(200)]
    assert len(child) == 200 and not set(child) & set(parent)
    assert all(uuid.UUID(i).version == 4 for i in child)


def test_forked_child_is_a_new_source() -> None:
    """A forked worker numbering on from the parent's counter would collide with it: new id, from 1."""
    from otel_audit.source import SOURCE

    out: dict[str, Any] = {}
    SOURCE.stamp(out)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            child: dict[str, Any] = {}
            SOURCE.stamp(child)
            os.write(write, f"{child['audit.source.id']},{child['audit.source.seq']}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_id, child_seq = pipe.read().split(",")
    os.waitpid(pid, 0)
    assert child_id.split(".")[0] != out["audit.source.id"].split(".")[0] and child_seq == "1"


def test_source_numbers_from_many_threads_have_no_duplicate_and_no_hole() -> None:
    import threading

    from otel_audit.source import SourceStamp

    stamp, seen = SourceStamp(), []

    def run() -> None:
        local = []
        for _ in range(20_000):
            out: dict[str, Any] = {"audit.tenant.id": "acme"}
            stamp.stamp(out)
            local.append(out["audit.source.seq"])
        seen.extend(local)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 160_001))
