"""Signed checkpoints: an Ed25519 signature over a chain's head, kept twice.

A checkpoint says "chain C had exactly N rows, the last one hashing to H, at time T", and links
to the previous checkpoint of the chain by that checkpoint's signature. It is written into the
``audit_checkpoints`` table and as a JSON file under the checkpoint directory (the copy an
auditor keeps outside the database, like CloudTrail's digest files). Rewriting a chain breaks
its checkpoints' hashes; forging a checkpoint needs the private key; dropping the newest rows
leaves a checkpoint pointing past the end.

``serve`` writes one per chain of its own instance every ``integrity.checkpoint_interval``
seconds (when the chain grew) and at shutdown; the retention job calls
:func:`write_checkpoint` at every archive boundary.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from receiver.integrity.chain import Head

CHECKPOINT_VERSION = 1
PRIVATE_KEY_FILE = "otel-audit-signing.key"
PUBLIC_KEY_FILE = "otel-audit-signing.pub"
#: the scheduler and the retention job may seal the same chain at once: one at a time
_WRITE_LOCK = threading.Lock()


class CheckpointStore(Protocol):
    def chain_head(self, chain_id: str) -> tuple[Head, str] | None: ...
    def last_checkpoint_row(self, chain_id: str) -> dict[str, Any] | None: ...
    def insert_checkpoint(self, row: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class Checkpoint:
    chain_id: str
    tenant_id: str
    last_seq: int
    last_hash: str  # hex
    created_at: str  # ISO 8601 UTC, microseconds
    count: int  # rows sealed since the previous checkpoint
    prev_signature: str  # base64; "" for the first checkpoint of a chain
    key_id: str
    version: int = CHECKPOINT_VERSION
    signature: str = ""  # base64 Ed25519 over payload()

    def payload(self) -> bytes:
        """The signed bytes: every field but the signature, as sorted compact JSON."""
        body = {k: v for k, v in asdict(self).items() if k != "signature"}
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=2) + "\n"

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["created_at"] = dt.datetime.fromisoformat(self.created_at.replace("Z", "+00:00"))
        return row

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Checkpoint:
        created = data["created_at"]
        if isinstance(created, dt.datetime):
            created = iso(created)
        return cls(
            chain_id=str(data["chain_id"]),
            tenant_id=str(data["tenant_id"]),
            last_seq=int(data["last_seq"]),
            last_hash=str(data["last_hash"]),
            created_at=str(created),
            count=int(data["count"]),
            prev_signature=str(data["prev_signature"]),
            key_id=str(data["key_id"]),
            version=int(data["version"]),
            signature=str(data["signature"]),
        )

    def signature_valid(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(base64.b64decode(self.signature, validate=True), self.payload())
        except (InvalidSignature, ValueError):
            return False
        return True


def iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class Signer:
    """An Ed25519 private key (PKCS#8 PEM) that signs checkpoints."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_file(cls, path: str | Path) -> Signer:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(key)

    def sign(self, checkpoint: Checkpoint) -> Checkpoint:
        signature = base64.b64encode(self._key.sign(checkpoint.payload())).decode("ascii")
        return Checkpoint(**{**asdict(checkpoint), "signature": signature})


def generate_key(out_dir: str | Path) -> tuple[Path, Path]:
    """A new key pair in ``out_dir``: the private key readable by its owner only."""
    out = Path(out_dir)
    if not out.exists():
        out.mkdir(mode=0o700, parents=True)
        out.chmod(0o700)  # a new key directory is owner-only whatever the umask
    private_path, public_path = out / PRIVATE_KEY_FILE, out / PUBLIC_KEY_FILE
    if private_path.exists():
        raise FileExistsError(f"{private_path} exists; refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public_path.write_bytes(public_pem(key.public_key()))
    return private_path, public_path


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """A public key PEM, or the public half of a private key PEM."""
    data = Path(path).read_bytes()
    if b"PRIVATE KEY" in data:
        return Signer.from_file(path).public_key
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def checkpoint_path(directory: str | Path, checkpoint: Checkpoint) -> Path:
    """``<dir>/<tenant>/<instance>/<last_seq, 20 digits>.json`` (names made filesystem-safe)."""
    tenant, _, instance = checkpoint.chain_id.rpartition("/")
    safe = base64.urlsafe_b64encode(tenant.encode("utf-8")).decode("ascii").rstrip("=") or "_"
    return Path(directory) / safe / instance / f"{checkpoint.last_seq:020d}.json"


def write_file(directory: str | Path, checkpoint: Checkpoint) -> Path:
    path = checkpoint_path(directory, checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(checkpoint.to_json())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def read_directory(directory: str | Path) -> list[Checkpoint]:
    """Every checkpoint file under ``directory`` (unreadable files raise: they are evidence)."""
    root = Path(directory)
    if not root.exists():
        return []
    return [
        Checkpoint.from_mapping(json.loads(p.read_text(encoding="utf-8")))
        for p in sorted(root.rglob("*.json"))
    ]


def write_checkpoint(
    store: CheckpointStore,
    signer: Signer,
    chain_id: str,
    directory: str | Path | None = None,
    *,
    force: bool = False,
) -> Checkpoint | None:
    """Seal ``chain_id`` at its current head: sign, store, and write the JSON file.

    Returns the new checkpoint; when the chain did not grow since its last checkpoint, returns
    that one (with ``force``, e.g. at an archive boundary) or None. The head is read from the
    store, so the checkpoint only ever covers rows that are durable.
    """
    with _WRITE_LOCK:
        return _write_checkpoint(store, signer, chain_id, directory, force)


def _write_checkpoint(
    store: CheckpointStore, signer: Signer, chain_id: str, directory: str | Path | None, force: bool
) -> Checkpoint | None:
    found = store.chain_head(chain_id)
    if found is None:
        return None
    head, tenant_id = found
    previous_row = store.last_checkpoint_row(chain_id)
    previous = Checkpoint.from_mapping(previous_row) if previous_row else None
    if previous is not None and previous.last_seq >= head.seq:
        return previous if force else None
    checkpoint = signer.sign(
        Checkpoint(
            chain_id=chain_id,
            tenant_id=tenant_id,
            last_seq=head.seq,
            last_hash=head.hash.hex(),
            created_at=iso(dt.datetime.now(dt.timezone.utc)),
            count=head.seq - (previous.last_seq if previous else 0),
            prev_signature=previous.signature if previous else "",
            key_id=signer.key_id,
        )
    )
    if directory is not None:
        write_file(directory, checkpoint)
    store.insert_checkpoint(checkpoint.to_row())
    return checkpoint
