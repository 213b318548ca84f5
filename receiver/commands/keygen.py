"""``otel-audit keygen``: make the Ed25519 key pair that signs checkpoints."""

from __future__ import annotations

import argparse

from receiver.commands.common import CliError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keygen", help="make the Ed25519 key pair that signs checkpoints")
    p.add_argument("--out", required=True, help="directory for otel-audit-signing.key and .pub")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from receiver.integrity.checkpoints import generate_key

    try:
        private_path, public_path = generate_key(args.out)
    except (FileExistsError, OSError) as exc:
        raise CliError(str(exc)) from exc
    print(f"private key: {private_path} (set integrity.key to it; keep it away from the data)")
    print(f"public key:  {public_path} (give it to auditors: otel-audit verify --public-key)")
    return 0
