"""``otel-audit verify-proof FILE --public-key KEY``: check a saved event proof offline (no
store, no server); exit 0 only if it holds, else one line saying why not."""

from __future__ import annotations

import argparse
import json

from receiver.commands.common import CliError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify-proof", help="check a saved proof offline; exit 0 only if it holds")
    p.add_argument("file", help="the JSON printed by `otel-audit proof` or GET /api/events/{id}/proof")
    p.add_argument(
        "--public-key",
        action="append",
        required=True,
        help="verifier key (name+id+key, or a file: .pub/PEM); repeatable, e.g. an old key after rotation",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from receiver.integrity.checkpoints import load_verifiers
    from receiver.integrity.note import NoteError
    from receiver.integrity.proofs import check_event_proof

    try:
        verifiers = [v for spec in args.public_key for v in load_verifiers(spec)]
    except (OSError, ValueError, NoteError) as exc:
        raise CliError(f"cannot read the public key: {exc}") from exc
    try:
        with open(args.file, encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the proof: {exc}") from exc
    if not isinstance(doc, dict):
        raise CliError("not a proof document")
    problem = check_event_proof(doc, verifiers)
    if problem:
        raise CliError(f"proof does NOT hold: {problem}")
    print(
        f"proof holds: leaf {doc['leaf_index']} of {doc['origin']} is in the signed tree of {doc['tree_size']} leaves"
    )
    return 0
