"""``otel-audit pubkey``: print the public key (PEM) that verifies checkpoint signatures."""

from __future__ import annotations

import argparse
import sys

from receiver.commands.common import CliError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pubkey", help="print the checkpoint-signing public key (PEM)")
    p.add_argument(
        "--key", help="private key file (default: integrity.key of --config, or the store's own key)"
    )
    p.add_argument("--config", help="YAML config")
    p.add_argument("--store", help="embedded store whose generated key to use")
    p.add_argument("--out", help="write the PEM to this file instead of stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from receiver.config import ConfigError, load_config
    from receiver.integrity.checkpoints import PRIVATE_KEY_FILE, load_public_key, public_pem
    from receiver.store import chdb_path

    try:
        config = load_config(args.config, store=args.store)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    key = args.key or config.integrity.key
    if key is None and config.store.startswith("chdb://"):
        key = str(chdb_path(config.store) / "integrity" / "keys" / PRIVATE_KEY_FILE)
    if key is None:
        raise CliError("no key: give --key or set integrity.key in --config")
    try:
        pem = public_pem(load_public_key(key))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read key {key}: {exc}") from exc
    if args.out:
        with open(args.out, "wb") as handle:
            handle.write(pem)
    else:
        sys.stdout.write(pem.decode("ascii"))
    return 0
