"""Tampering for real, through SQL on the store, against the verifiable log: every case of
issue 12 is detected and named (tenant, origin, leaf); intact logs verify clean; proofs are
checked with an independent RFC 9162 implementation (rfc9162_reference.py)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from conftest import REPO, start_receiver
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from otlp_builders import audit_attrs, export, log_record, request
from rfc9162_reference import check_consistency, check_inclusion, mth, open_checkpoint, sha

from receiver.integrity.canonical import event_digests
from receiver.integrity.checkpoints import Signer, generate_key, read_published
from receiver.integrity.note import CheckpointBody, Verifier
from receiver.integrity.tiles import TreeEdge
from receiver.integrity.verify import verify_store
from receiver.store.sql import Statement

ACME_EVENTS = 120
TOKEN = "t" * 32


@pytest.fixture
def sealed(store, tmp_path: Path):
    """120 acme + 30 globex events through a real receiver; checkpoints after 60 acme events
    and at shutdown; published to a directory outside the data."""
    private, public = generate_key(tmp_path / "keys")
    published = tmp_path / "published"
    receiver = start_receiver(
        store,
        integrity={"key": str(private), "publish": [{"dir": str(published)}], "instance_id": "receiver-a"},
        admin_tokens=[{"token": TOKEN, "role": "admin", "tenants": ["*"]}],
    )
    endpoint = f"127.0.0.1:{receiver.grpc_port}"
    for round_ in range(4):
        records = [log_record(audit_attrs(enduser__id=f"user-{round_}-{i}")) for i in range(30)]
        if round_ == 0:
            records += [log_record(audit_attrs(audit__tenant__id="globex")) for _ in range(30)]
        assert export(endpoint, request(records)).partial_success.rejected_log_records == 0
        if round_ == 1:
            assert receiver._checkpoints.seal_all() == 2
    verifier = Signer.from_file(private).verifier
    return store, "otel-audit/acme/receiver-a", verifier, published, receiver


def verify(store, verifier, published, tenant="acme", dirs=None):
    reports = verify_store(
        store, tenants=(tenant,), checkpoint_dirs=[published] if dirs is None else dirs, verifiers=[verifier]
    )
    assert len(reports) == 1
    return reports[0]


def sql(store, text: str) -> None:
    store._command(Statement(text.replace("{db}", store.database)))


def seal(receiver) -> None:
    receiver._checkpoints.seal_all()


def test_intact_logs_verify_and_notes_are_c2sp_byte_exact(sealed):
    store, origin, verifier, published, receiver = sealed
    seal(receiver)
    report = verify(store, verifier, published)
    assert report.status == "intact", report.summary()
    assert report.summary().startswith("acme: 120 events in 1 log, ")  # the timer may seal more
    notes = [n for _, n in read_published(published) if n.startswith(origin + "\n")]
    sizes = [int(n.split("\n")[1]) for n in notes]
    assert sizes[0] == 0 and {60, 120} <= set(sizes)  # registration, then the seals
    # byte-exact C2SP: body, blank line, "— <name> <base64(key id ‖ sig)>\n", key id per spec
    raw = verifier.public_key.public_bytes_raw()
    vkey = Verifier.of(verifier.public_key).text()
    from rfc9162_reference import verifier_key

    assert vkey == verifier_key("otel-audit", raw)
    o, size, root = open_checkpoint(notes[-1], vkey)
    assert (o, size) == (origin, 120)
    lines = notes[-1].split("\n")
    assert lines[3] == "" and lines[4].startswith("\u2014 otel-audit ") and notes[-1].endswith("\n")
    assert len(base64.b64decode(lines[4].split(" ")[2])) == 4 + 64
    # the root is the RFC 9162 root of the stored events' leaves, recomputed independently
    rows = pa.concat_tables(pa.Table.from_batches([b]) for b in store.iter_leaves(origin, 0, 119))
    leaves = [sha(b"\x00" + c) for c in _canonical(rows)]
    assert mth(leaves) == root
    assert verify(store, verifier, published, "globex").status == "intact"


def _canonical(rows: pa.Table) -> list[bytes]:
    from receiver.integrity.canonical import canonical_column

    return canonical_column(rows).to_pylist()


def test_event_proof_route_and_offline_verify_proof(sealed, tmp_path):
    store, origin, verifier, published, receiver = sealed
    seal(receiver)
    base = f"http://127.0.0.1:{receiver.admin_port}"
    headers = {"authorization": f"Bearer {TOKEN}"}
    rows = pa.concat_tables(pa.Table.from_batches([b]) for b in store.iter_leaves(origin, 70, 70))
    event_id = rows.column("id")[0].as_py()
    doc = httpx.get(f"{base}/api/events/{event_id}/proof", headers=headers).json()
    assert set(doc) == {
        "origin",
        "leaf_index",
        "tree_size",
        "leaf_hash",
        "canonical",
        "inclusion",
        "checkpoint",
    }
    canonical = base64.b64decode(doc["canonical"])
    assert event_id.encode() in canonical and (doc["origin"], doc["leaf_index"]) == (origin, 70)
    assert sha(b"\x00" + canonical).hex() == doc["leaf_hash"]
    o, size, root = open_checkpoint(doc["checkpoint"], verifier.text())
    path = [bytes.fromhex(h) for h in doc["inclusion"]]
    assert check_inclusion(70, size, bytes.fromhex(doc["leaf_hash"]), path, root)
    assert not check_inclusion(71, size, bytes.fromhex(doc["leaf_hash"]), path, root)
    # fetching a proof is a read of the event, recorded like GET /api/events/{id}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        trail = store._query_arrow(
            Statement(
                f"SELECT resource_id FROM {store.database}.audit_events"
                " WHERE reason = 'fetched an audit event''s inclusion proof'"
            )
        ).column("resource_id")
        if trail.to_pylist() == [event_id]:
            break
        time.sleep(0.2)
    assert trail.to_pylist() == [event_id]
    cps = httpx.get(f"{base}/api/checkpoints", params={"tenant": "acme"}, headers=headers).json()[
        "checkpoints"
    ]
    sizes = [int(c.split("\n")[1]) for c in cps]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 120 and sizes[-1] == 0 and 60 in sizes
    cons = httpx.get(
        f"{base}/api/consistency", params={"origin": origin, "from": 60, "to": 120}, headers=headers
    ).json()
    _, _, root60 = open_checkpoint(cps[sizes.index(60)], verifier.text())
    hashes = [bytes.fromhex(h) for h in cons["hashes"]]
    assert check_consistency(60, 120, root60, root, hashes)
    assert not check_consistency(60, 120, sha(b"forged"), root, hashes)  # a rollback/fork fails
    assert httpx.get(f"{base}/api/consistency", params={"origin": origin}, headers=headers).status_code == 400
    # offline: the saved proof, the verifier key, nothing else
    saved = tmp_path / "proof.json"
    saved.write_text(json.dumps(doc))
    cli = [sys.executable, "-m", "receiver.cli", "verify-proof", str(saved), "--public-key", verifier.text()]
    ok = subprocess.run(cli, capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    doc["inclusion"][0] = "00" * 32
    saved.write_text(json.dumps(doc))
    bad = subprocess.run(cli, capture_output=True, text=True, cwd=REPO)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "does NOT hold" in bad.stderr


def test_deleting_the_oldest_events_is_missing_at_leaf_0(sealed):
    store, origin, verifier, published, _ = sealed
    sql(
        store,
        "ALTER TABLE {db}.audit_events DELETE WHERE tenant_id = 'acme' AND seq <= 9 SETTINGS mutations_sync = 1",
    )
    d = verify(store, verifier, published).damage
    assert (d.kind, d.tenant, d.origin, d.leaf) == ("missing", "acme", origin, 0)
    assert "leaf 0–9 missing" in d.detail


def test_forged_new_log_correctly_hashed_is_unknown(sealed):
    store, origin, verifier, published, _ = sealed
    rows = pa.concat_tables(pa.Table.from_batches([b]) for b in store.iter_leaves(origin, 5, 5))
    forged = rows.set_column(
        rows.schema.get_field_index("chain_id"), "chain_id", pa.array(["otel-audit/acme/receiver-b"])
    )
    forged = forged.set_column(forged.schema.get_field_index("seq"), "seq", pa.array([0], pa.uint64()))
    leaf = event_digests(forged)[0]
    sql(
        store,
        "INSERT INTO {db}.audit_events SELECT * REPLACE (generateUUIDv4() AS id, 'otel-audit/acme/receiver-b' AS chain_id,"
        f" 0 AS seq, unhex('{leaf.hex()}') AS hash) FROM (SELECT * FROM {{db}}.audit_events WHERE chain_id = '{origin}' AND seq = 5)",
    )
    report = verify(store, verifier, published)
    assert [(d.kind, d.origin) for d in report.damages] == [("unknown-log", "otel-audit/acme/receiver-b")]


def test_event_in_no_log_is_damage(sealed):
    store, origin, verifier, published, _ = sealed
    sql(
        store,
        "INSERT INTO {db}.audit_events SELECT * REPLACE (generateUUIDv4() AS id, '' AS chain_id, 0 AS seq)"
        f" FROM (SELECT * FROM {{db}}.audit_events WHERE chain_id = '{origin}' AND seq = 3)",
    )
    d = verify(store, verifier, published).damage
    assert (d.kind, d.origin) == ("unchained", "")


def test_modified_reordered_and_duplicate_leaves(sealed):
    store, origin, verifier, published, _ = sealed
    sql(
        store,
        "ALTER TABLE {db}.audit_events UPDATE user_id = 'mallory' WHERE seq = 17 AND tenant_id = 'acme' SETTINGS mutations_sync = 1",
    )
    d = verify(store, verifier, published).damage
    assert (d.kind, d.leaf) == ("modified", 17)


def test_reordered_leaves_are_named(sealed):
    store, origin, verifier, published, _ = sealed
    sql(
        store,
        "ALTER TABLE {db}.audit_events UPDATE seq = if(seq = 50, 51, 50)"
        " WHERE tenant_id = 'acme' AND seq IN (50, 51) SETTINGS mutations_sync = 1",
    )
    d = verify(store, verifier, published).damage
    assert d.kind in ("modified", "reordered") and d.leaf == 50


def test_duplicate_leaf_is_named(sealed):
    store, origin, verifier, published, _ = sealed
    sql(
        store,
        "INSERT INTO {db}.audit_events SELECT * REPLACE (generateUUIDv4() AS id)"
        f" FROM {{db}}.audit_events WHERE chain_id = '{origin}' AND seq = 33",
    )
    kinds = {(d.kind, d.leaf) for d in verify(store, verifier, published).damages}
    assert ("duplicate", 33) in kinds


def _rewrite_and_resign(store, origin: str, signer: Signer) -> None:
    """The attacker holding the key: edit leaf 10, rebuild every tile, re-sign every checkpoint."""
    sql(
        store,
        "ALTER TABLE {db}.audit_events UPDATE user_id = 'mallory' WHERE tenant_id = 'acme' AND seq = 10 SETTINGS mutations_sync = 1",
    )
    rows = pa.concat_tables(pa.Table.from_batches([b]) for b in store.iter_leaves(origin, 0, 119))
    leaves = event_digests(rows)
    sql(
        store,
        f"ALTER TABLE {{db}}.audit_events UPDATE hash = unhex('{leaves[10].hex()}') WHERE chain_id = '{origin}' AND seq = 10 SETTINGS mutations_sync = 1",
    )
    sql(
        store,
        f"ALTER TABLE {{db}}.audit_log_tiles DELETE WHERE origin = '{origin}' SETTINGS mutations_sync = 1",
    )
    store.insert_tiles(TreeEdge(origin).append(leaves))
    sql(
        store,
        f"ALTER TABLE {{db}}.audit_log_checkpoints DELETE WHERE origin = '{origin}' AND tree_size > 0 SETTINGS mutations_sync = 1",
    )
    from receiver.integrity.checkpoints import Checkpointer

    Checkpointer(store, signer).seal(origin, "acme")


def test_rewrite_resigned_with_the_key_is_caught_only_by_the_published_copy(sealed, tmp_path):
    store, origin, verifier, published, receiver = sealed
    seal(receiver)
    _rewrite_and_resign(store, origin, Signer.from_file(tmp_path / "keys" / "otel-audit-signing.key"))
    alone = verify(store, verifier, published, dirs=[])
    assert alone.status == "intact" and "cannot be excluded" in alone.summary()
    d = verify(store, verifier, published).damage
    assert (d.kind, d.origin) == ("root-mismatch", origin) and "published copy" in d.detail


def test_forged_checkpoint_fails_the_signature(sealed):
    store, origin, verifier, published, _ = sealed
    other = Signer(Ed25519PrivateKey.generate())
    note = other.sign(CheckpointBody(origin, 120, bytes(32)).text())
    store.insert_checkpoint(
        {
            "origin": origin,
            "tenant_id": "acme",
            "tree_size": 120,
            "root_hash": "",
            "key_id": "",
            "note": note,
            "created_at": __import__("datetime").datetime.now(__import__("datetime").timezone.utc),
        }
    )
    d = verify(store, verifier, published).damage
    assert d.kind == "bad-signature" and d.origin == origin


def test_rollback_to_an_older_state_is_caught_by_a_newer_published_checkpoint(sealed):
    store, origin, verifier, published, receiver = sealed
    seal(receiver)  # published: 0, 60, 120
    # the store put back as it was at 60 leaves: newer events, tiles and checkpoints gone
    rows = pa.concat_tables(pa.Table.from_batches([b]) for b in store.iter_leaves(origin, 0, 59))
    sql(
        store,
        f"ALTER TABLE {{db}}.audit_events DELETE WHERE chain_id = '{origin}' AND seq >= 60 SETTINGS mutations_sync = 1",
    )
    sql(
        store,
        f"ALTER TABLE {{db}}.audit_log_tiles DELETE WHERE origin = '{origin}' SETTINGS mutations_sync = 1",
    )
    store.insert_tiles(TreeEdge(origin).append(event_digests(rows)))
    sql(
        store,
        f"ALTER TABLE {{db}}.audit_log_checkpoints DELETE WHERE origin = '{origin}' AND tree_size > 60 SETTINGS mutations_sync = 1",
    )
    assert verify(store, verifier, published, dirs=[]).status == "intact"  # self-consistent
    d = verify(store, verifier, published).damage
    assert (d.kind, d.leaf) == ("rollback", 60) and "120" in d.detail


def test_key_rotation_old_checkpoints_verify_with_the_old_key(store, tmp_path):
    old_private, _ = generate_key(tmp_path / "old")
    new_private, _ = generate_key(tmp_path / "new")
    published = tmp_path / "published"
    for key in (old_private, new_private):
        receiver = start_receiver(
            store, integrity={"key": str(key), "publish": [{"dir": str(published)}], "instance_id": "r1"}
        )
        export(f"127.0.0.1:{receiver.grpc_port}", request([log_record(audit_attrs()) for _ in range(10)]))
        receiver.stop_listeners()  # seals
    old, new = Signer.from_file(old_private).verifier, Signer.from_file(new_private).verifier
    both = verify_store(store, tenants=("acme",), checkpoint_dirs=[published], verifiers=[old, new])[0]
    assert both.status == "intact", both.summary()
    only_new = verify_store(store, tenants=("acme",), checkpoint_dirs=[published], verifiers=[new])[0]
    assert only_new.damage.kind == "bad-signature"
    # the server's default keys after a rotation: the signing key and the .pub files beside it
    import shutil

    from receiver.config import load_config
    from receiver.integrity.setup import default_verifiers

    shutil.copy(old_private.with_suffix(".pub"), new_private.parent / "old-key.pub")
    integrity = load_config(None, integrity={"key": str(new_private)}).integrity
    assert {v.text() for v in default_verifiers(integrity, store)} == {old.text(), new.text()}
    notes = {int(n.split("\n")[1]): n for _, n in read_published(published)}
    assert open_checkpoint(notes[10], old.text())[1] == 10  # sealed by the old key
    assert open_checkpoint(notes[20], new.text())[1] == 20


def test_cli_verify_names_tenant_origin_and_leaf(sealed, tmp_path):
    store, origin, verifier, published, receiver = sealed
    sql(
        store,
        "ALTER TABLE {db}.audit_events DELETE WHERE tenant_id = 'acme' AND seq = 42 SETTINGS mutations_sync = 1",
    )
    report = verify(store, verifier, published)
    assert (
        report.summary().startswith("acme: 119 events in 1 log")
        and f"missing at log {origin} leaf 42" in report.summary()
    )
    assert report.to_json()["leaf"] == 42 and report.to_json()["origin"] == origin


def test_writer_recovers_tiles_after_a_lost_tile_insert(store, tmp_path):
    private, _ = generate_key(tmp_path / "keys")
    cfg = {"key": str(private), "publish": [{"dir": str(tmp_path / "pub")}], "instance_id": "r1"}
    receiver = start_receiver(store, integrity=cfg)
    export(f"127.0.0.1:{receiver.grpc_port}", request([log_record(audit_attrs()) for _ in range(300)]))
    receiver.stop_listeners()
    origin = "otel-audit/acme/r1"
    sql(
        store,
        f"ALTER TABLE {{db}}.audit_log_tiles DELETE WHERE origin = '{origin}' AND (level > 0 OR idx > 0 OR width > 100) SETTINGS mutations_sync = 1",
    )
    receiver = start_receiver(store, integrity=cfg)
    export(f"127.0.0.1:{receiver.grpc_port}", request([log_record(audit_attrs()) for _ in range(5)]))
    receiver.stop_listeners()
    report = verify_store(
        store,
        tenants=("acme",),
        checkpoint_dirs=[tmp_path / "pub"],
        verifiers=[Signer.from_file(private).verifier],
    )[0]
    assert report.status == "intact", report.summary()
    assert report.logs[0].leaves == 305


def test_the_by_hand_snippet_in_the_docs_checks_a_real_proof(sealed, tmp_path):
    """docs/INTEGRITY.md's customer snippet (hashlib + cryptography only) accepts a real proof
    and rejects a tampered one."""
    store, origin, verifier, published, receiver = sealed
    seal(receiver)
    from receiver.integrity.proofs import event_proof

    rows = pa.concat_tables(pa.Table.from_batches([b]) for b in store.iter_leaves(origin, 77, 77))
    doc = event_proof(store, rows.column("id")[0].as_py(), None)
    text = (REPO / "docs" / "INTEGRITY.md").read_text()
    snippet = text.split("### Checking one event by hand", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "import base64, hashlib, json" in snippet and "receiver" not in snippet
    snippet = snippet.replace('open("proof.json")', f"open({str(tmp_path / 'proof.json')!r})")
    other = Signer(Ed25519PrivateKey.generate()).verifier.text()
    (tmp_path / "other.py").write_text(snippet.replace('"otel-audit+1a2b3c4d+AVz…"', repr(other)))
    snippet = snippet.replace('"otel-audit+1a2b3c4d+AVz…"', repr(verifier.text()))
    script = tmp_path / "by_hand.py"
    script.write_text(snippet)
    (tmp_path / "proof.json").write_text(json.dumps(doc))
    wrong_key = subprocess.run(
        [sys.executable, str(tmp_path / "other.py")], capture_output=True, text=True, timeout=60
    )
    assert wrong_key.returncode != 0 and "not signed by that key" in wrong_key.stderr
    ok = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and f"event is in {origin} at leaf 77" in ok.stdout, ok.stderr
    doc["canonical"] = base64.b64encode(base64.b64decode(doc["canonical"]).replace(b"acme", b"acmf")).decode()
    (tmp_path / "proof.json").write_text(json.dumps(doc))
    bad = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0


def test_verify_while_a_commit_lands(sealed):
    """A commit between verify's snapshot of the tree and its read of the tiles makes a tile
    longer than the snapshot (seen as a 500 from /api/verify on a loaded machine): the hashes
    past the snapshot belong to the next verify, not to this one's buffers."""
    store, origin, verifier, published, _ = sealed

    class CommitLanded:
        def __getattr__(self, name: str):
            return getattr(store, name)

        def tile_range(self, origin_: str, level: int, lo: int, hi: int) -> dict[int, bytes]:
            tiles = store.tile_range(origin_, level, lo, hi)
            if level == 0 and tiles:
                last = max(tiles)
                if len(tiles[last]) < 256 * 32:
                    tiles[last] += bytes(range(32))  # the next leaf's hash, just written
            return tiles

    report = verify(CommitLanded(), verifier, published)
    assert report.status == "intact", report.summary()


def test_events_committed_before_their_tiles_are_not_damage(store, tmp_path: Path):
    """A commit writes its events, then their tiles: a verify that snapshots the tree between the
    two sees events past the tree. They are the next verify's, not "beyond-tree" damage, once
    the tree grows over them; an event the tree never reaches still is."""
    private, _ = generate_key(tmp_path / "keys")
    receiver = start_receiver(store, integrity={"key": str(private), "instance_id": "receiver-a"})
    endpoint = f"127.0.0.1:{receiver.grpc_port}"
    origin = "otel-audit/acme/receiver-a"
    export(endpoint, request([log_record(audit_attrs()) for _ in range(10)]))
    receiver._checkpoints.seal_all()  # verify reads checkpoints before its snapshot of the tree
    before = store.last_tiles(origin=origin)
    export(endpoint, request([log_record(audit_attrs()) for _ in range(10)]))
    verifier = Signer.from_file(private).verifier

    class TilesLate:
        """The tree as it was before the second commit's tiles, at the first look only."""

        calls = 0

        def __getattr__(self, name: str):
            return getattr(store, name)

        def last_tiles(self, **kwargs):
            TilesLate.calls += 1
            return before if TilesLate.calls == 1 else store.last_tiles(**kwargs)

    reports = verify_store(TilesLate(), tenants=("acme",), verifiers=[verifier])
    assert reports[0].status == "intact", reports[0].summary()
    assert TilesLate.calls >= 2

    sql(
        store,
        "ALTER TABLE {db}.audit_events UPDATE seq = 500 WHERE seq = 19 AND tenant_id = 'acme' SETTINGS mutations_sync = 1",
    )
    import receiver.integrity.verify as verify_module

    verify_module.TREE_CATCH_UP_SECONDS = 0.3
    try:
        damaged = verify_store(store, tenants=("acme",), verifiers=[verifier])[0]
    finally:
        verify_module.TREE_CATCH_UP_SECONDS = 5.0
    assert any(d.kind == "beyond-tree" for d in damaged.damages), damaged.summary()
