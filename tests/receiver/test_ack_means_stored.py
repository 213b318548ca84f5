"""Acknowledged ⇒ stored (issue 13 items 1-3): every record an export does not report rejected is
in the store afterwards, through the real transports, the real writers and real chDB.

- the idempotency key is (tenant, id): another tenant's event with the same id is not a duplicate,
  within one commit or against the store, on both writers and both store lookups;
- an event time the tenant's retention would delete on insert (or absurdly in the future) is
  rejected through OTLP partial success, naming the limit;
- non-finite numbers in ``audit.changes`` are rejected, and a stored row holding such JSON does
  not break the read API.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from conftest import start_receiver
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from otlp_builders import audit_attrs, export, log_record, request

from receiver.filters import EventFilter
from receiver.store.base import SqlStore

ACME = "acme-ingest-token-0123456789"
GLOBEX = "globex-ingest-token-0123456789"
TOKENS = [{"token": ACME, "tenant": "acme"}, {"token": GLOBEX, "tenant": "globex"}]
PB = {"content-type": "application/x-protobuf"}


def stored(store) -> list[tuple[str, str]]:
    return sorted((r["tenant_id"], r["id"]) for r in store.search(EventFilter(), 1000))


@pytest.mark.parametrize("ack", ["store", "journal"])
def test_the_same_id_from_two_tenants_in_one_commit_is_stored_for_both(store, ack):
    receiver = start_receiver(store, ack=ack)
    try:
        shared = str(uuid.uuid4())
        records = [
            log_record(audit_attrs(audit__event__id=shared, audit__tenant__id="globex")),
            log_record(audit_attrs(audit__event__id=shared, audit__tenant__id="acme")),
            # a true duplicate within the commit is still dropped
            log_record(audit_attrs(audit__event__id=shared, audit__tenant__id="acme")),
        ]
        answer = export(f"127.0.0.1:{receiver.grpc_port}", request(records))
        assert not answer.HasField("partial_success")
        assert receiver.flush(30)
        assert stored(store) == [("acme", shared), ("globex", shared)]
    finally:
        receiver.stop_listeners()


def test_an_id_stored_for_one_tenant_does_not_swallow_another_tenants_event(store):
    """globex sends an id already stored for acme, in a commit that also holds acme's events
    (the journal batches both requests into one commit)."""
    receiver = start_receiver(
        store, ack="journal", ingest_tokens=TOKENS, ingest={"commit_interval_seconds": 30}
    )
    try:
        grpc_at = f"127.0.0.1:{receiver.grpc_port}"
        shared, fresh = str(uuid.uuid4()), str(uuid.uuid4())
        export(
            grpc_at, request([log_record(audit_attrs(audit__event__id=shared, audit__tenant__id=None))]), ACME
        )
        assert receiver.flush(30)
        # one commit: globex's event (over OTLP/HTTP), acme's retry of its stored event, a new acme event
        body = request(
            [log_record(audit_attrs(audit__event__id=shared, audit__tenant__id=None, enduser__id="gina"))]
        ).SerializeToString()
        url = f"http://127.0.0.1:{receiver.http_port}/v1/logs"
        r = httpx.post(url, content=body, headers={**PB, "authorization": f"Bearer {GLOBEX}"})
        assert r.status_code == 200
        assert not ExportLogsServiceResponse.FromString(r.content).HasField("partial_success")
        retry_and_new = [
            log_record(audit_attrs(audit__event__id=shared, audit__tenant__id=None)),
            log_record(audit_attrs(audit__event__id=fresh, audit__tenant__id=None)),
        ]
        export(grpc_at, request(retry_and_new), ACME)
        assert receiver.flush(30)
        assert stored(store) == sorted([("acme", shared), ("acme", fresh), ("globex", shared)])
        (globex_row,) = store.search(EventFilter(tenant="globex"), 10)
        assert globex_row["user_id"] == "gina"
    finally:
        receiver.stop_listeners()


def test_both_store_lookups_answer_tenant_id_pairs(store):
    """chDB's Arrow-ids lookup and the server engines' chunked bound arrays (run here on chDB)."""
    receiver = start_receiver(store)
    try:
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        records = [
            log_record(audit_attrs(audit__event__id=a, audit__tenant__id="acme")),
            log_record(audit_attrs(audit__event__id=b, audit__tenant__id="globex")),
        ]
        export(f"127.0.0.1:{receiver.grpc_port}", request(records))
    finally:
        receiver.stop_listeners()
    many = [str(uuid.uuid4()) for _ in range(5000)] + [a, b]  # more than one bound-array chunk
    for lookup in (store.existing_ids, lambda t, i: SqlStore.existing_ids(store, t, i)):
        assert lookup(["acme", "globex"], many) == {("acme", a), ("globex", b)}
        assert lookup(["acme"], many) == {("acme", a)}
