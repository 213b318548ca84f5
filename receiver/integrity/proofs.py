"""Proofs for one event (inclusion) and between two tree sizes (consistency), and the offline
check of a saved event proof (``otel-audit verify-proof``), in SPEC section 7's JSON shapes."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from typing import Any

from receiver.integrity.canonical import canonical_column
from receiver.integrity.checkpoints import tile_loader
from receiver.integrity.merkle import consistency_path, inclusion_path, verify_inclusion
from receiver.integrity.note import CheckpointBody, NoteError, Verifier, open_note
from receiver.integrity.tiles import TileHashes, TileMissing, TreeEdge, tiles_needed


class ProofError(Exception):
    """No proof can be given (``status``: the HTTP status that fits)."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


def event_proof(store: Any, event_id: str, tenants: tuple[str, ...] | None) -> dict[str, Any]:
    row = store.leaf_row(event_id, tenants)
    if row is None:
        raise ProofError("no such event")
    origin, leaf = row.column("chain_id")[0].as_py(), int(row.column("seq")[0].as_py())
    if not origin.startswith("otel-audit/"):
        raise ProofError("this event is in no verifiable log (stored before it existed)", 409)
    covering = store.checkpoint_covering(origin, leaf)
    if covering is None:
        raise ProofError("no signed checkpoint covers this event yet; retry after the next checkpoint", 409)
    note = covering["note"]
    size = int(covering["tree_size"])
    data = canonical_column(row).to_pylist()[0]
    try:
        path = inclusion_path(leaf, size, prefetched(store, origin, lambda h: inclusion_path(leaf, size, h)))
    except TileMissing as exc:
        raise ProofError(f"the tree's hashes are incomplete: {exc}", 500) from exc
    return {
        "origin": origin,
        "leaf_index": leaf,
        "tree_size": size,
        "leaf_hash": hashlib.sha256(b"\x00" + data).hexdigest(),
        "canonical": base64.b64encode(data).decode("ascii"),
        "inclusion": [h.hex() for h in path],
        "checkpoint": note,
    }


def consistency(store: Any, origin: str, first: int, second: int) -> dict[str, Any]:
    edge = TreeEdge.from_last_tiles(origin, store.last_tiles(origin=origin))
    if not 0 <= first <= second:
        raise ProofError("need 0 <= from <= to", 400)
    if second > edge.size:
        raise ProofError(f"the log has {edge.size} leaves", 400)
    hashes = prefetched(store, origin, lambda h: consistency_path(first, second, h))
    return {"hashes": [h.hex() for h in consistency_path(first, second, hashes)]}


def prefetched(store: Any, origin: str, build: Callable[[TileHashes], object]) -> TileHashes:
    """A tile reader holding every tile ``build`` needs, fetched in one query."""
    hashes = tile_loader(store, origin)
    hashes.preload(store.tiles_at(origin, tiles_needed(build)))
    return hashes


def check_event_proof(doc: dict[str, Any], verifiers: list[Verifier]) -> str:
    """'' when the proof holds, else one line saying why not."""
    try:
        text, _ = open_note(str(doc["checkpoint"]), verifiers)
        body = CheckpointBody.parse(text)
        canonical = base64.b64decode(doc["canonical"], validate=True)
        leaf = bytes.fromhex(doc["leaf_hash"])
        path = [bytes.fromhex(h) for h in doc["inclusion"]]
        index, size = int(doc["leaf_index"]), int(doc["tree_size"])
    except NoteError as exc:
        return f"checkpoint: {exc}"
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        return f"not a proof document: {exc}"
    if body.origin != doc.get("origin") or body.size != size:
        return "the checkpoint is for another log or tree size than the proof"
    if hashlib.sha256(b"\x00" + canonical).digest() != leaf:
        return "leaf_hash is not SHA-256(0x00 || canonical)"
    marker = f"{len(body.origin)}:{body.origin}{len(str(index))}:{index}".encode()
    if marker not in canonical:
        return "the canonical bytes do not name this log and leaf index"
    if not verify_inclusion(index, size, leaf, path, body.root):
        return f"the inclusion path does not lead leaf {index} to the signed root of {size} leaves"
    return ""
