"""C2SP signed notes with Ed25519 keys, and tlog-checkpoint bodies.

A note is ``<text>\\n— <key name> <base64(key id ‖ signature)>\\n`` (the text ends with a
newline, so a blank line separates it from the signatures). The key id is the first 4 bytes of
SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key); a verifier key is written
``<key name>+<key id, 8 hex>+<base64(0x01 ‖ public key)>``. A checkpoint's text is
``<origin>\\n<tree size>\\n<base64 root>\\n``. Same bytes as Go's golang.org/x/mod/sumdb/note.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_NAME = "otel-audit"
ALG_ED25519 = b"\x01"
DASH = "\u2014"


class NoteError(ValueError):
    """A note or key that does not parse or does not verify."""


def raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ALG_ED25519 + raw_public(public_key)).digest()[:4]


@dataclass(frozen=True, slots=True)
class Verifier:
    name: str
    id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def of(cls, public_key: Ed25519PublicKey, name: str = KEY_NAME) -> Verifier:
        return cls(name, key_id(name, public_key), public_key)

    def text(self) -> str:
        encoded = base64.b64encode(ALG_ED25519 + raw_public(self.public_key)).decode()
        return f"{self.name}+{self.id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """A C2SP verifier key ``name+hex8+base64``."""
        try:
            name, hex_id, encoded = text.strip().split("+", 2)
            raw = base64.b64decode(encoded, validate=True)
            claimed = bytes.fromhex(hex_id)
        except (ValueError, binascii.Error) as exc:
            raise NoteError(f"not a verifier key (name+id+key): {text.strip()[:60]!r}") from exc
        if len(raw) != 33 or raw[:1] != ALG_ED25519 or len(claimed) != 4:
            raise NoteError("verifier key is not an Ed25519 key")
        verifier = cls.of(Ed25519PublicKey.from_public_bytes(raw[1:]), name)
        if verifier.id != claimed:
            raise NoteError("verifier key id does not match its name and key")
        return verifier


def _valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() or c == "+" for c in name)


def sign_note(text: str, private_key: Ed25519PrivateKey, name: str = KEY_NAME) -> str:
    if not text.endswith("\n") or not _valid_name(name):
        raise NoteError("note text must end with a newline; key names have no spaces or '+'")
    verifier = Verifier.of(private_key.public_key(), name)
    signature = private_key.sign(text.encode("utf-8"))
    return f"{text}\n{DASH} {name} {base64.b64encode(verifier.id + signature).decode()}\n"


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    id: bytes
    signature: bytes


def split_note(note: str) -> tuple[str, list[Signature]]:
    """The text and the signature lines of a note (no verification)."""
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise NoteError("not a signed note (no blank line before the signatures)")
    text, lines = note[: cut + 1], note[cut + 2 :].splitlines()
    signatures = []
    for line in lines:
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH:
            raise NoteError(f"malformed signature line {line[:60]!r}")
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except binascii.Error as exc:
            raise NoteError("signature is not base64") from exc
        if len(blob) < 5:
            raise NoteError("signature too short")
        signatures.append(Signature(parts[1], blob[:4], blob[4:]))
    if not signatures:
        raise NoteError("note has no signature")
    return text, signatures


def open_note(note: str, verifiers: list[Verifier]) -> tuple[str, Verifier]:
    """The note's text and the key that signed it, or NoteError (unknown key, bad signature)."""
    text, signatures = split_note(note)
    known = {(v.name, v.id): v for v in verifiers}
    for sig in signatures:
        verifier = known.get((sig.name, sig.id))
        if verifier is None:
            continue
        try:
            verifier.public_key.verify(sig.signature, text.encode("utf-8"))
        except InvalidSignature as exc:
            raise NoteError(f"bad signature by {sig.name}+{sig.id.hex()}") from exc
        return text, verifier
    ids = ", ".join(f"{s.name}+{s.id.hex()}" for s in signatures)
    raise NoteError(f"signed by no known key ({ids})")


@dataclass(frozen=True, slots=True)
class CheckpointBody:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> CheckpointBody:
        lines = text.split("\n")
        try:
            origin, size_text, root_text = lines[0], lines[1], lines[2]
            size = int(size_text)
            root = base64.b64decode(root_text, validate=True)
        except (IndexError, ValueError, binascii.Error) as exc:
            raise NoteError("not a tlog-checkpoint body") from exc
        if not origin or size < 0 or len(root) != 32 or str(size) != size_text:
            raise NoteError("not a tlog-checkpoint body")
        return cls(origin, size, root)
