"""The signed-note format against the reference vector of Go's golang.org/x/mod/sumdb/note
(its ExampleSign / TestNewVerifier: a Go toolchain is not installed here, so the vector stands
in for interop): same key id, same verifier key text, same note bytes."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from receiver.integrity.note import CheckpointBody, NoteError, Verifier, open_note, sign_note

GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def go_private_key() -> Ed25519PrivateKey:
    raw = base64.b64decode(GO_SIGNER_KEY.split("+", 4)[-1])  # PRIVATE+KEY+name+id+key
    assert raw[0] == 1
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


def test_sign_gives_the_go_reference_note_byte_for_byte():
    key = go_private_key()
    assert Verifier.of(key.public_key(), "PeterNeumann").text() == GO_VERIFIER_KEY
    assert sign_note(GO_TEXT, key, "PeterNeumann") == GO_NOTE


def test_open_accepts_the_go_note_and_rejects_edits():
    verifier = Verifier.parse(GO_VERIFIER_KEY)
    assert open_note(GO_NOTE, [verifier]) == (GO_TEXT, verifier)
    with pytest.raises(NoteError, match="bad signature"):
        open_note(GO_NOTE.replace("problem is", "problem was"), [verifier])
    with pytest.raises(NoteError, match="no known key"):
        open_note(GO_NOTE, [Verifier.of(Ed25519PrivateKey.generate().public_key(), "PeterNeumann")])
    with pytest.raises(NoteError):
        Verifier.parse(GO_VERIFIER_KEY.replace("c74f20a3", "c74f20a4"))  # id must match the key


def test_checkpoint_body_is_the_tlog_checkpoint_text():
    body = CheckpointBody("otel-audit/acme/r1", 12, bytes(range(32)))
    assert body.text() == "otel-audit/acme/r1\n12\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    assert CheckpointBody.parse(body.text()) == body
    for bad in ("o\n012\nAA==\n", "o\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n", "o\n1\n"):
        with pytest.raises(NoteError):
            CheckpointBody.parse(bad)
