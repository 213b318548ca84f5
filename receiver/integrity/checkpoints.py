"""Signed checkpoints of the verifiable log: sign, store, publish, read back.

A checkpoint is a C2SP tlog-checkpoint note (:mod:`receiver.integrity.note`) saying "log O had
N leaves with root R", signed by the receiver's Ed25519 key. Each is inserted into the
``audit_log_checkpoints`` table and published to every ``integrity.publish`` target (a
directory, e.g. a WORM mount, and/or an HTTP endpoint), which is the copy an auditor compares
the store against. A log's first checkpoint (size 0) is signed when the log is created, before
its first leaf is stored: the set of signed logs is the set of legitimate logs.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from receiver.integrity.merkle import EMPTY_ROOT
from receiver.integrity.note import CheckpointBody, Verifier, sign_note
from receiver.integrity.tiles import Tile, TileHashes, TreeEdge

log = logging.getLogger("otel_audit.integrity")
PRIVATE_KEY_FILE = "otel-audit-signing.key"
PUBLIC_KEY_FILE = "otel-audit-signing.pub"
NOTE_SUFFIX = ".note"
_WRITE_LOCK = threading.Lock()


class CheckpointStore(Protocol):
    def last_tiles(self, instance_id: str | None = None, origin: str | None = None) -> list[Tile]: ...
    def tile_range(self, origin: str, level: int, lo: int, hi: int) -> dict[int, bytes]: ...
    def checkpoint_rows(
        self, tenants: tuple[str, ...] | None, origin: str | None = None
    ) -> list[dict[str, Any]]: ...
    def insert_checkpoint(self, row: dict[str, Any]) -> None: ...


class Signer:
    """An Ed25519 private key (PKCS#8 PEM) that signs notes."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.verifier = Verifier.of(private_key.public_key())

    @classmethod
    def from_file(cls, path: str | Path) -> Signer:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(key)

    def sign(self, text: str) -> str:
        return sign_note(text, self._key, self.verifier.name)


def private_dir(path: Path) -> None:
    """Make ``path`` owner-only (0700) if it does not exist; an existing directory (e.g. a
    mounted WORM volume) is left as its owner set it."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)  # mkdir's mode is masked by the umask


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` atomically, readable by the owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def generate_key(out_dir: str | Path) -> tuple[Path, Path]:
    """A new key pair in ``out_dir`` (0700): the private key 0600, the public key as a PEM and
    as a C2SP verifier key line."""
    out = Path(out_dir)
    private_dir(out)
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
    public_path.write_bytes(
        public_pem(key.public_key()) + Verifier.of(key.public_key()).text().encode() + b"\n"
    )
    return private_path, public_path


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_verifiers(spec: str) -> list[Verifier]:
    """Verifier keys from a C2SP verifier key string, or a file holding verifier key lines, a
    PEM public key or a PEM private key (its public half)."""
    if "+" in spec and not Path(spec).exists():
        return [Verifier.parse(spec)]
    data = Path(spec).read_bytes()
    if b"PRIVATE KEY" in data:
        return [Signer.from_file(spec).verifier]
    out = []
    if b"BEGIN PUBLIC KEY" in data:
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{spec} is not an Ed25519 public key")
        out.append(Verifier.of(key))
    in_pem = False  # a PEM body line is base64 and may hold "+" signs: never a verifier key
    for line in data.decode("utf-8").splitlines():
        if line.startswith("-----"):
            in_pem = line.startswith("-----BEGIN")
            continue
        if not in_pem and line.count("+") >= 2 and " " not in line.strip():
            verifier = Verifier.parse(line)
            if verifier not in out:
                out.append(verifier)
    if not out:
        raise ValueError(f"{spec}: no public key found")
    return out


# -- publishing ---------------------------------------------------------------------------


def note_path(directory: str | Path, body: CheckpointBody) -> Path:
    """``<dir>/<tenant, urlsafe base64>/<instance>/<tree size, 20 digits>.note``."""
    tenant, _, instance = body.origin.partition("/")[2].rpartition("/")
    safe = base64.urlsafe_b64encode(tenant.encode("utf-8")).decode("ascii").rstrip("=") or "_"
    return Path(directory) / safe / (instance or "_") / f"{body.size:020d}{NOTE_SUFFIX}"


@dataclass(frozen=True, slots=True)
class PublishTarget:
    directory: str | None = None
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def publish(self, note: str, body: CheckpointBody) -> None:
        if self.directory is not None:
            path = note_path(self.directory, body)
            for parent in reversed(path.relative_to(self.directory).parents):
                private_dir(Path(self.directory) / parent)
            write_private(path, note.encode("utf-8"))
        if self.url is not None:
            response = httpx.post(
                self.url,
                content=note.encode("utf-8"),
                headers={"content-type": "text/plain; charset=utf-8", **dict(self.headers)},
                timeout=10,
            )
            response.raise_for_status()


def read_published(directory: str | Path) -> list[tuple[Path, str]]:
    """Every note file under ``directory``, with its path (unreadable files raise: evidence)."""
    root = Path(directory)
    if not root.exists():
        return []
    return [(p, p.read_text(encoding="utf-8")) for p in sorted(root.rglob("*" + NOTE_SUFFIX))]


# -- sealing ------------------------------------------------------------------------------


def tile_loader(store: CheckpointStore, origin: str) -> TileHashes:
    return TileHashes(lambda level, index: store.tile_range(origin, level, index, index).get(index))


def tree_head(store: CheckpointStore, origin: str) -> tuple[int, bytes]:
    """The size and root of a log as its stored tiles hold it."""
    edge = TreeEdge.from_last_tiles(origin, store.last_tiles(origin=origin))
    if edge.size == 0:
        return 0, EMPTY_ROOT
    return edge.size, tile_loader(store, origin)(0, edge.size)


@dataclass
class Checkpointer:
    """Signs, stores and publishes checkpoints with one key."""

    store: CheckpointStore
    signer: Signer
    targets: tuple[PublishTarget, ...] = ()

    def register(self, origin: str, tenant_id: str) -> str:
        """The size-0 checkpoint that makes a new log known (idempotent)."""
        with _WRITE_LOCK:
            if self.store.checkpoint_rows(None, origin):
                return ""
            return self._write(origin, tenant_id, 0, EMPTY_ROOT)

    def seal(self, origin: str, tenant_id: str, *, force: bool = False) -> str | None:
        """A checkpoint of the log's current tree, unless it did not grow (None); ``force``
        returns the newest existing one then."""
        with _WRITE_LOCK:
            size, root = tree_head(self.store, origin)
            rows = self.store.checkpoint_rows(None, origin)
            newest = rows[0] if rows else None
            if newest is not None and int(newest["tree_size"]) >= size:
                return str(newest["note"]) if force else None
            return self._write(origin, tenant_id, size, root)

    def _write(self, origin: str, tenant_id: str, size: int, root: bytes) -> str:
        body = CheckpointBody(origin, size, root)
        note = self.signer.sign(body.text())
        self.store.insert_checkpoint(
            {
                "origin": origin,
                "tenant_id": tenant_id,
                "tree_size": size,
                "root_hash": root.hex(),
                "key_id": self.signer.verifier.text(),
                "note": note,
                "created_at": dt.datetime.now(dt.timezone.utc),
            }
        )
        self.publish(note, body)
        return note

    def publish(self, note: str, body: CheckpointBody) -> None:
        for target in self.targets:
            try:
                target.publish(note, body)
            except (OSError, httpx.HTTPError) as exc:
                log.error("publishing checkpoint %s/%d to %s failed: %s", body.origin, body.size, target, exc)
