"""The ``otel-audit`` command (SPEC section 3): parses, dispatches to ``receiver.commands.*``.

Commands that read data work against a store directly (``--store``) or, while ``serve`` holds
an embedded store, against the running server (``--server URL --token T``). Errors end with
exit code 2 and one readable line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from receiver.commands import COMMANDS
from receiver.commands.common import CliError

EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-audit", description="Compliance-grade audit logs on OpenTelemetry"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"receiver.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    try:
        return int(args.run(args))
    except CliError as exc:
        print(f"otel-audit {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
