"""``otel-audit pubkey``: print the C2SP verifier key (``name+id+base64``) of the signing key;
``--pem`` prints the PEM public key instead."""

from __future__ import annotations

import argparse
import sys

from receiver.commands.common import CliError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pubkey", help="print the checkpoint verifier key (C2SP name+id+key)")
    p.add_argument("--pem", action="store_true", help="print the PEM public key instead")
    p.add_argument(
        "--key", help="private key file (default: integrity.key of --config, or the store's own key)"
    )
    p.add_argument("--config", help="YAML config")
    p.add_argument("--store", help="embedded store whose generated key to use")
    p.add_argument("--out", help="write the PEM to this file instead of stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from receiver.config import ConfigError, load_config
    from receiver.integrity.checkpoints import Signer, public_pem
    from receiver.integrity.setup import default_key_path
    from receiver.store import chdb_path

    try:
        config = load_config(args.config, store=args.store)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    key = args.key or config.integrity.key
    if key is None and config.store.startswith("chdb://"):

        class _Where:  # the default key location only needs the data path
            path = str(chdb_path(config.store))

        found = default_key_path(config.integrity, _Where())
        key = str(found) if found else None
    if key is None:
        raise CliError("no key: give --key or set integrity.key in --config")
    try:
        signer = Signer.from_file(key)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read key {key}: {exc}") from exc
    verifier = signer.verifier.text() + "\n"
    pem = public_pem(signer.verifier.public_key) if args.pem else verifier.encode("ascii")
    if args.out:
        with open(args.out, "wb") as handle:
            handle.write(pem)
    else:
        sys.stdout.write(pem.decode("ascii"))
    return 0
