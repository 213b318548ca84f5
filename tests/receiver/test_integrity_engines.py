"""The chain, checkpoints and verify on every store engine (chDB's own API, clickhouse-connect
over chDB, a live ClickHouse server when OTEL_AUDIT_TEST_CLICKHOUSE_URL is set): the same SQL,
engine digests where the engine offers them and Python digests elsewhere."""

from __future__ import annotations

import datetime as dt
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_store_engines import engine_store  # noqa: F401 - the parametrised engine fixture

from receiver.integrity.chain import Chainer
from receiver.integrity.checkpoints import Checkpointer, PublishTarget, Signer, read_published
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
    sealer = Checkpointer(store, signer, (PublishTarget(directory=str(tmp_path)),))
    for tenant in ("acme", "globex"):
        sealer.register(f"otel-audit/{tenant}/e1", tenant)
    sealed = sealer.seal("otel-audit/acme/e1", "acme")
    assert sealed is not None and sealed.split("\n")[1] == "25"
    assert sealer.seal("otel-audit/acme/e1", "acme") is None  # nothing new
    assert sealer.seal("otel-audit/acme/e1", "acme", force=True) == sealed
    assert sorted(int(n.split("\n")[1]) for _, n in read_published(tmp_path)) == [0, 0, 25]
    # a restarted writer continues each log where the store says it ends
    chainer2 = Chainer(store, "e1")
    table, pending = chainer2.assign(batch(["globex"]))
    assert table.column("seq").to_pylist() == [10]
    store.insert(table)
    chainer2.advance(pending)

    reports = verify_store(store, checkpoint_dirs=[tmp_path], verifiers=[signer.verifier])
    assert [(r.tenant, r.events, r.status) for r in reports] == [
        ("acme", 25, "intact"),
        ("globex", 11, "intact"),
    ]
    store._command(
        Statement(
            f"ALTER TABLE {store.database}.audit_events UPDATE changes = '{{}}'"
            " WHERE tenant_id = 'globex' AND seq = 3 SETTINGS mutations_sync = 2"
        )
    )
    damaged = verify_store(store, tenants=("globex",), verifiers=[signer.verifier])[0]
    assert (damaged.status, damaged.damage.leaf, damaged.damage.kind) == ("damaged", 3, "modified")
