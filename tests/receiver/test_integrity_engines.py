"""The chain, checkpoints and verify on every store engine (chDB's own API, clickhouse-connect
over chDB, a live ClickHouse server when OTEL_AUDIT_TEST_CLICKHOUSE_URL is set): the same SQL,
engine digests where the engine offers them and Python digests elsewhere."""

from __future__ import annotations

import datetime as dt
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_store_engines import engine_store  # noqa: F401 - the parametrised engine fixture

from receiver.integrity.chain import Chainer
from receiver.integrity.checkpoints import Signer, read_directory, write_checkpoint
from receiver.integrity.verify import verify_store
from receiver.model import AuditEvent, events_to_table
from receiver.store.sql import Statement

NOW = dt.datetime.now(dt.timezone.utc)


def batch(tenants: list[str]) -> object:
    return events_to_table(
        AuditEvent(
            id=str(uuid.uuid4()),
            tenant_id=t,
            user_id=f"user-{i}",
            action="update",
            resource_type="invoice",
            event_name="audit.invoice.update",
            created_at=NOW,
            received_at=NOW,
            changes='{"amount": {"old": 1, "new": 2}}',
            attributes={"ticket": f"INC-{i}", "path": "C:\\new\\table\t'q'"},
            retain_until=(NOW + dt.timedelta(days=30)).date(),
        )
        for i, t in enumerate(tenants)
    )


def test_chain_checkpoint_verify_and_tamper_on_every_engine(engine_store, tmp_path):  # noqa: F811
    store = engine_store
    chainer = Chainer(store, "e1")
    for tenants in (["acme", "globex"] * 10, ["acme"] * 15):
        table, heads = chainer.assign(batch(tenants))
        store.insert(table)
        chainer.advance(heads)
    signer = Signer(Ed25519PrivateKey.generate())
    sealed = write_checkpoint(store, signer, "acme/e1", tmp_path)
    assert sealed is not None and (sealed.last_seq, sealed.count) == (25, 25)
    assert write_checkpoint(store, signer, "acme/e1", tmp_path) is None  # nothing new
    assert write_checkpoint(store, signer, "acme/e1", tmp_path, force=True) == sealed
    assert [c.last_seq for c in read_directory(tmp_path)] == [25]
    # a restarted writer continues each chain where the store says it ends
    table, heads = Chainer(store, "e1").assign(batch(["globex"]))
    assert table.column("seq").to_pylist() == [11]
    store.insert(table)

    reports = verify_store(store, checkpoint_dir=tmp_path, public_key=signer.public_key)
    assert [r.summary() for r in reports] == [
        "acme: 25 events, 1 checkpoint, intact",
        "globex: 11 events, 0 checkpoints, intact",
    ]
    store._command(
        Statement(
            f"ALTER TABLE {store.database}.audit_events UPDATE changes = '{{}}'"
            " WHERE tenant_id = 'globex' AND seq = 3 SETTINGS mutations_sync = 2"
        )
    )
    damaged = verify_store(store, tenants=("globex",), public_key=signer.public_key)[0]
    assert (damaged.status, damaged.damage.seq, damaged.damage.kind) == ("damaged", 3, "modified")
