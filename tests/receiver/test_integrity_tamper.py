"""Tampering for real, through SQL on the store: every kind of damage is detected, located to
the sequence number and named; intact data verifies clean; read paths cannot write."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import REPO, start_receiver
from otlp_builders import audit_attrs, export, log_record, request

from receiver.integrity.canonical import canonical_column
from receiver.integrity.chain import GENESIS
from receiver.integrity.checkpoints import generate_key, load_public_key, read_directory
from receiver.integrity.verify import verify_chain, verify_store
from receiver.store.sql import Statement

ACME_EVENTS = 120
HOUR_NS = 3600 * 10**9


@pytest.fixture
def sealed(store, tmp_path: Path):
    """120 acme + 30 globex events in 4 requests through a real receiver, sealed by checkpoints
    (one after the first two requests, one at shutdown)."""
    private, public = generate_key(tmp_path / "keys")
    cps = tmp_path / "checkpoints"
    receiver = start_receiver(store, integrity={"key": str(private), "checkpoint_dir": str(cps)})
    endpoint = f"127.0.0.1:{receiver.grpc_port}"
    for round_ in range(4):
        at = time.time_ns() - (4 - round_) * HOUR_NS  # each request an hour apart
        records = [
            log_record(audit_attrs(enduser__id=f"user-{round_}-{i}"), time_ns=at + i) for i in range(30)
        ]
        records += [
            log_record(audit_attrs(audit__tenant__id="globex")) for _ in range(30 if round_ == 0 else 0)
        ]
        assert export(endpoint, request(records)).partial_success.rejected_log_records == 0
        if round_ == 1:
            assert receiver._checkpoints.seal_all() == 2
    receiver.stop_listeners()  # seals the rest
    chain = store.chain_summaries(("acme",))[0].chain_id
    return store, chain, load_public_key(public), cps, receiver


def verify(store, public_key, cps, tenant="acme"):
    reports = verify_store(store, tenants=(tenant,), checkpoint_dir=cps, public_key=public_key)
    assert len(reports) == 1
    return reports[0]


def sql(store, text: str) -> None:
    store._command(Statement(text.replace("{db}", store.database)))


def test_intact_chain_verifies_with_checkpoints_in_store_and_files(sealed):
    store, chain, public_key, cps, _ = sealed
    report = verify(store, public_key, cps)
    assert report.summary() == "acme: 120 events, 2 checkpoints, intact"
    assert report.to_json()["status"] == "intact" and report.to_json()["first_bad_seq"] is None
    files = read_directory(cps)
    assert sorted((c.tenant_id, c.last_seq) for c in files) == [("acme", 60), ("acme", 120), ("globex", 30)]
    assert files[0].signature_valid(public_key)
    assert verify(store, public_key, cps, "globex").summary() == "globex: 30 events, 1 checkpoint, intact"


def test_modified_column_is_named_at_its_seq(sealed):
    store, chain, public_key, cps, _ = sealed
    sql(
        store,
        "ALTER TABLE {db}.audit_events UPDATE user_id = 'mallory' WHERE seq = 17 SETTINGS mutations_sync = 1",
    )
    report = verify(store, public_key, cps)
    assert (report.damage.seq, report.damage.kind) == (17, "modified")
    assert report.summary().startswith("acme: 16 events, 2 checkpoints, DAMAGED at seq 17 of chain acme/")


def test_deleted_row_is_named(sealed):
    store, chain, public_key, cps, _ = sealed
    sql(
        store,
        "ALTER TABLE {db}.audit_events DELETE WHERE tenant_id = 'acme' AND seq = 42 SETTINGS mutations_sync = 1",
    )
    damage = verify(store, public_key, cps).damage
    assert (damage.seq, damage.kind, damage.detail) == (42, "deleted", "seq 42 missing")


def test_forged_row_is_named(sealed):
    store, chain, public_key, cps, _ = sealed
    sql(
        store,
        "INSERT INTO {db}.audit_events SELECT * REPLACE (generateUUIDv4() AS id, 'mallory' AS user_id)"
        " FROM {db}.audit_events WHERE tenant_id = 'acme' AND seq = 33",
    )
    damage = verify(store, public_key, cps).damage
    assert (damage.seq, damage.kind) == (33, "inserted")


def test_swapped_sequence_numbers_are_named(sealed):
    store, chain, public_key, cps, _ = sealed
    sql(
        store,
        "ALTER TABLE {db}.audit_events UPDATE seq = if(seq = 50, 51, 50)"
        " WHERE tenant_id = 'acme' AND seq IN (50, 51) SETTINGS mutations_sync = 1",
    )
    damage = verify(store, public_key, cps).damage
    assert (damage.seq, damage.kind) == (50, "reordered")
    assert "follows the row now at seq 51" in damage.detail


def test_dropped_newest_rows_are_caught_only_by_a_checkpoint(sealed):
    store, chain, public_key, cps, _ = sealed
    sql(
        store,
        "ALTER TABLE {db}.audit_events DELETE WHERE tenant_id = 'acme' AND seq > 115 SETTINGS mutations_sync = 1",
    )
    # the chain alone cannot tell: rows 1..115 are a perfectly valid chain
    alone = verify_chain(chain, "acme", store.iter_chain(chain, 1, 115), [], None)
    assert alone.damage is None and alone.events == 115
    damage = verify(store, public_key, cps).damage
    assert (damage.seq, damage.kind) == (116, "truncated")
    assert "116–120" in damage.detail


def _recompute_chain_with(store, chain: str, seq: int) -> bytes:
    """The attacker's rewrite: edit one row, recompute every hash after it, put the chain back."""
    rows = pa.concat_tables([pa.Table.from_batches([b]) for b in store.iter_chain(chain, 1, ACME_EVENTS)])
    users = rows.column("user_id").to_pylist()
    users[seq - 1] = "mallory"
    rows = rows.set_column(rows.schema.get_field_index("user_id"), "user_id", pa.array(users))
    prev, prevs, hashes = GENESIS, [], []
    for data in canonical_column(rows).to_pylist():
        prevs.append(prev)
        prev = hashlib.sha256(prev + hashlib.sha256(data).digest()).digest()
        hashes.append(prev)
    rows = rows.set_column(
        rows.schema.get_field_index("prev_hash"), "prev_hash", pa.array(prevs, pa.binary(32))
    )
    rows = rows.set_column(rows.schema.get_field_index("hash"), "hash", pa.array(hashes, pa.binary(32)))
    sql(
        store,
        f"ALTER TABLE {{db}}.audit_events DELETE WHERE chain_id = '{chain}' SETTINGS mutations_sync = 1",
    )
    assert pc.all(pc.equal(rows.column("chain_id"), chain)).as_py()
    store.insert(rows)
    return prev


def test_recomputed_chain_is_caught_by_the_signed_checkpoint(sealed):
    store, chain, public_key, cps, _ = sealed
    _recompute_chain_with(store, chain, 70)
    damage = verify(store, public_key, cps).damage
    # self-consistent rows; the checkpoint at 120 no longer matches; 1..60 still match theirs
    assert (damage.seq, damage.kind) == (61, "rewritten")


def test_recomputed_chain_with_forged_checkpoint_fails_the_signature(sealed):
    store, chain, public_key, cps, _ = sealed
    new_head = _recompute_chain_with(store, chain, 70)
    sql(
        store,
        f"ALTER TABLE {{db}}.audit_checkpoints UPDATE last_hash = '{new_head.hex()}'"
        " WHERE tenant_id = 'acme' AND last_seq = 120 SETTINGS mutations_sync = 1",
    )
    # without the auditor's file copies, the edited checkpoint no longer verifies
    damage = verify(store, public_key, None).damage
    assert (damage.seq, damage.kind) == (120, "bad-signature")
    # with them, their (authentic) checkpoint at 120 shows where the rewrite starts
    damage = verify(store, public_key, cps).damage
    assert (damage.seq, damage.kind) == (61, "rewritten")


def test_checkpoint_edited_in_store_conflicts_with_file_copy(sealed):
    store, chain, public_key, cps, _ = sealed
    sql(
        store,
        "ALTER TABLE {db}.audit_checkpoints UPDATE count = 999"
        " WHERE tenant_id = 'acme' AND last_seq = 60 SETTINGS mutations_sync = 1",
    )
    damage = verify(store, public_key, cps).damage
    assert (damage.seq, damage.kind) == (60, "checkpoint-conflict")
    sql(
        store,
        "ALTER TABLE {db}.audit_checkpoints DELETE WHERE tenant_id = 'acme' AND last_seq = 60 SETTINGS mutations_sync = 1",
    )
    # the file copy still holds it: the deletion from the store alone changes nothing
    assert verify(store, public_key, cps).damage is None
    # a checkpoint gone from both places breaks the signature links
    damage = verify(store, public_key, None).damage
    assert (damage.seq, damage.kind) == (120, "checkpoint-missing")


def test_read_paths_cannot_write(sealed):
    store, chain, public_key, cps, _ = sealed
    for text in (
        "ALTER TABLE {db}.audit_events DELETE WHERE 1 SETTINGS mutations_sync = 1",
        "ALTER TABLE {db}.audit_events UPDATE user_id = 'x' WHERE 1",
        "INSERT INTO {db}.audit_events (id, tenant_id) VALUES (generateUUIDv4(), 'acme')",
        "TRUNCATE TABLE {db}.audit_checkpoints",
    ):
        with pytest.raises(Exception, match="readonly"):
            store._query_arrow(Statement(text.replace("{db}", store.database)))
    assert verify(store, public_key, cps).damage is None


def test_api_verify_per_tenant_with_roles(store, tmp_path):
    admin, acme_admin, auditor = "a" * 20, "b" * 20, "c" * 20
    receiver = start_receiver(
        store,
        admin_tokens=[
            {"token": admin, "role": "admin", "tenants": ["*"]},
            {"token": acme_admin, "role": "admin", "tenants": ["acme"]},
            {"token": auditor, "role": "auditor", "tenants": ["acme"]},
        ],
        integrity={"checkpoint_dir": str(tmp_path / "cps")},
    )
    try:
        endpoint = f"127.0.0.1:{receiver.grpc_port}"
        export(
            endpoint,
            request([log_record(audit_attrs(audit__tenant__id=t)) for t in ["acme"] * 7 + ["globex"] * 3]),
        )
        receiver._checkpoints.seal_all()
        url = f"http://127.0.0.1:{receiver.admin_port}/api/verify"

        def get(token: str | None, **params: str) -> httpx.Response:
            headers = {"authorization": f"Bearer {token}"} if token else {}
            return httpx.get(url, params=params, headers=headers, timeout=60)

        assert get(None).status_code == 401
        assert get("x" * 20).status_code == 401
        assert get(auditor).status_code == 403
        assert get(acme_admin, tenant="globex").status_code == 403
        assert "error" in get(acme_admin, tenant="globex").json()
        everything = get(admin).json()["tenants"]
        assert [(t["tenant"], t["status"], t["events"], t["checkpoints"]) for t in everything] == [
            ("acme", "intact", 7, 1),
            ("globex", "intact", 3, 1),
        ]
        assert [t["tenant"] for t in get(acme_admin).json()["tenants"]] == ["acme"]
        sql(
            store,
            "ALTER TABLE {db}.audit_events DELETE WHERE tenant_id = 'acme' AND seq = 4 SETTINGS mutations_sync = 1",
        )
        broken = get(admin, tenant="acme").json()["tenants"][0]
        assert (broken["status"], broken["first_bad_seq"], broken["damage"]) == ("damaged", 4, "deleted")
        assert get(admin, since="not a date").status_code == 400
    finally:
        receiver.stop_listeners()


def test_server_grants_give_no_role_a_way_to_change_rows():
    grants = (REPO / "receiver/store/schema/server/grants.sql").read_text()
    statements = [s.strip() for s in grants.split(";") if s.strip() and not s.strip().startswith("--")]
    code = "\n".join(line for line in grants.splitlines() if not line.lstrip().startswith("--"))
    assert re.search(r"GRANT INSERT, SELECT ON audit\.audit_events TO otel_audit_ingest", code)
    assert "readonly = 1" in code and len(statements) >= 10
    for forbidden in ("UPDATE", "DELETE", "TRUNCATE", "DROP", "MODIFY", "ALL"):
        assert not re.search(rf"GRANT[^;]*\b{forbidden}\b", code), forbidden
    # and no code path of the service issues a row UPDATE/DELETE or TRUNCATE on events
    for path in (REPO / "receiver").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"ALTER TABLE[^\n]*\b(UPDATE|DELETE)\b", text), path
        assert not re.search(r"\bTRUNCATE TABLE\b", text), path


def test_expired_head_is_accepted_only_when_a_checkpoint_sealed_it(sealed, tmp_path):
    store, chain, public_key, cps, _ = sealed
    # retention removed the oldest rows (sealed by the checkpoints at 60 and 120)
    sql(
        store,
        "ALTER TABLE {db}.audit_events DELETE WHERE tenant_id = 'acme' AND seq <= 60 SETTINGS mutations_sync = 1",
    )
    report = verify(store, public_key, cps)
    assert report.summary() == "acme: 60 events, 2 checkpoints, intact"
    # the same gap with no checkpoint covering it is a deletion
    sql(store, "ALTER TABLE {db}.audit_checkpoints DELETE WHERE 1 SETTINGS mutations_sync = 1")
    damage = verify(store, public_key, None).damage
    assert (damage.seq, damage.kind, damage.detail) == (1, "deleted", "seqs 1–60 missing")


def test_seal_chains_for_an_archive_boundary(sealed, tmp_path):
    from receiver.config import Integrity
    from receiver.integrity.setup import seal_chains

    store, chain, public_key, cps, receiver = sealed
    integrity = receiver.config.integrity
    forced = seal_chains(store, integrity, ("acme",))
    assert [(c.tenant_id, c.last_seq) for c in forced] == [("acme", 120)]  # nothing new: the last one
    assert seal_chains(store, integrity, ("acme",), force=False) == []
    with pytest.raises(RuntimeError, match="no checkpoint signing key"):
        seal_chains(_ServerLike(store), Integrity())


class _ServerLike:
    """A store without a local data directory (like a ClickHouse server store)."""

    def __init__(self, store):
        self._store = store

    def chain_summaries(self, tenants):
        return self._store.chain_summaries(tenants)


def test_since_until_verify_part_of_the_chain(sealed):
    store, chain, public_key, cps, _ = sealed
    split = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2, minutes=30)  # rounds 0-1 | 2-3

    def part(**when):
        return verify_store(store, tenants=("acme",), checkpoint_dir=cps, public_key=public_key, **when)[0]

    assert part(since=split).summary() == "acme: 60 events, 2 checkpoints, intact"
    assert part(until=split).summary() == "acme: 60 events, 2 checkpoints, intact"
    sql(
        store,
        "ALTER TABLE {db}.audit_events UPDATE reason = 'edited' WHERE tenant_id = 'acme' AND seq = 70 SETTINGS mutations_sync = 1",
    )
    assert part(until=split).damage is None
    assert (part(since=split).damage.seq, part(since=split).damage.kind) == (70, "modified")
