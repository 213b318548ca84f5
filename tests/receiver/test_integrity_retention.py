"""Retention and the verifiable log: leaves that expire (TTL) or move to the archive are covered
by the retention job's log_retention records, so verify accepts them; the same leaves deleted
by hand are damage."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from receiver.config import load_config
from receiver.ingest import IngestConsumer
from receiver.integrity.chain import Chainer
from receiver.integrity.checkpoints import Checkpointer, Signer
from receiver.integrity.verify import verify_store
from receiver.model import AuditEvent, events_to_table
from receiver.retention.scheduler import build_retention
from receiver.store.sql import Statement
from receiver.telemetry import ReceiverMetrics
from receiver.writer import GroupCommitWriter

UTC = dt.timezone.utc
TODAY = dt.datetime.now(UTC).date()
ORIGIN = "otel-audit/acme/r1"


def events(days_back: list[int]) -> list[AuditEvent]:
    return [
        AuditEvent(
            id=str(uuid.uuid4()),
            tenant_id="acme",
            user_id=f"user-{i}",
            action="update",
            resource_type="invoice",
            event_name="audit.invoice.update",
            created_at=dt.datetime.combine(TODAY - dt.timedelta(days=back), dt.time(3), UTC),
            received_at=dt.datetime.now(UTC),
            retain_until=TODAY + dt.timedelta(days=5000),
            hot_until=TODAY + dt.timedelta(days=5000),
        )
        for i, back in enumerate(days_back)
    ]


@pytest.fixture
def logged(store):
    """20 acme events in log otel-audit/acme/r1, 8 of them 60 days old, the rest from today;
    a writer with the log's Chainer for the retention job's own records; a sealer."""
    signer = Signer(Ed25519PrivateKey.generate())
    sealer = Checkpointer(store, signer)
    chainer = Chainer(store, "r1", sealer.register)
    writer = GroupCommitWriter(store, ReceiverMetrics(), chainer=chainer)
    table, pending = chainer.assign(events_to_table(events([0] * 6 + [60] * 8 + [0] * 6)))
    store.insert(table)
    chainer.advance(pending)
    sealer.seal(ORIGIN, "acme")
    yield store, signer, sealer, writer
    writer.close()


def _service(store, writer, tmp_path, retain_days: int):
    config = load_config(
        None,
        retention={"default": {"hot_days": retain_days, "retain_days": retain_days}},
        archive={"path": str(tmp_path / "archive")},
    )
    consumer = IngestConsumer(config, writer, ReceiverMetrics())
    return build_retention(
        store, config, lambda request, identity: consumer.ingest(request, identity, "internal")
    )


def _verify(store, signer):
    return verify_store(store, tenants=("acme",), verifiers=[signer.verifier])[0]


def test_expired_leaves_are_covered_by_a_retention_record(logged, tmp_path):
    store, signer, sealer, writer = logged
    assert _verify(store, signer).status == "intact"
    _service(store, writer, tmp_path, 30).run()  # the 60-day-old leaves 6..13 expire
    rows = (
        store._query_arrow(
            Statement(
                f"SELECT seq FROM {store.database}.audit_events WHERE chain_id = '{ORIGIN}' AND seq < 20 ORDER BY seq"
            )
        )
        .column("seq")
        .to_pylist()
    )
    assert rows == [*range(6), *range(14, 20)]
    report = _verify(store, signer)
    assert report.status == "intact", report.summary()


def test_the_same_leaves_deleted_by_hand_are_damage(logged):
    store, signer, _, _ = logged
    store._command(
        Statement(
            f"ALTER TABLE {store.database}.audit_events DELETE WHERE chain_id = '{ORIGIN}'"
            " AND seq BETWEEN 6 AND 13 SETTINGS mutations_sync = 1"
        )
    )
    d = _verify(store, signer).damage
    assert (d.kind, d.origin, d.leaf) == ("missing", ORIGIN, 6) and "leaf 6–13 missing" in d.detail
