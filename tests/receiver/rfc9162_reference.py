"""An independent, deliberately plain RFC 9162 section 2.1 / C2SP signed-note implementation
for the tests: it imports nothing from the code under test."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def sha(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def mth(leaf_hashes: list[bytes]) -> bytes:
    """MTH over leaf hashes, by the recursive definition."""
    n = len(leaf_hashes)
    if n == 0:
        return sha(b"")
    if n == 1:
        return leaf_hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return sha(b"\x01" + mth(leaf_hashes[:k]) + mth(leaf_hashes[k:]))


def check_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2, written out step by step."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = sha(b"\x01" + p + r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn //= 2
                    sn //= 2
        else:
            r = sha(b"\x01" + r + p)
        fn //= 2
        sn //= 2
    return sn == 0 and r == root


def check_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]
) -> bool:
    """RFC 9162 2.1.4.2 for 0 < first < second."""
    if not 0 < first < second or not path:
        return False
    if first & (first - 1) == 0:
        path = [first_root] + list(path)
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn //= 2
        sn //= 2
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = sha(b"\x01" + c + fr)
            sr = sha(b"\x01" + c + sr)
            while fn % 2 == 0 and fn != 0:
                fn //= 2
                sn //= 2
        else:
            sr = sha(b"\x01" + sr + c)
        fn //= 2
        sn //= 2
    return fr == first_root and sr == second_root and sn == 0


def verifier_key(name: str, raw_public: bytes) -> str:
    key_id = sha(name.encode() + b"\n" + b"\x01" + raw_public)[:4]
    encoded = base64.b64encode(bytes([1]) + raw_public).decode()
    return f"{name}+{key_id.hex()}+{encoded}"


def open_checkpoint(note: str, vkey: str) -> tuple[str, int, bytes]:
    """(origin, size, root) of a C2SP checkpoint note signed by ``vkey``, or AssertionError."""
    name, hex_id, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64)
    assert raw[0] == 1
    text, _, sigs = note.partition("\n\n")
    text += "\n"
    lines = text.split("\n")
    assert len(lines) == 4 and lines[3] == ""
    for line in sigs.splitlines():
        dash, signer, blob64 = line.split(" ")
        assert dash == "\u2014"
        blob = base64.b64decode(blob64)
        if signer == name and blob[:4].hex() == hex_id:
            Ed25519PublicKey.from_public_bytes(raw[1:]).verify(blob[4:], text.encode())
            return lines[0], int(lines[1]), base64.b64decode(lines[2])
    raise AssertionError("no signature by that key")
