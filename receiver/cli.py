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
from receiver.commands.common import CliError, resolve_admin_token

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


#: modules of the ``receiver`` extra: missing, the base (emitter-only) install was used
_RECEIVER_EXTRA = frozenset(
    {"yaml", "pydantic", "grpc", "grpc_health", "chdb", "pyarrow", "starlette", "uvicorn", "httpx", "rich"}
    | {"orjson", "cryptography", "prometheus_client", "clickhouse_connect", "multipart", "google"}
)


def _missing_extra(exc: ModuleNotFoundError) -> int:
    name = (exc.name or "").split(".")[0]
    if name not in _RECEIVER_EXTRA:
        raise exc
    print(
        f"otel-audit: error: the receiver's dependencies are not installed (no module {name!r}): "
        "pip install 'otel-audit[receiver]' (from a checkout: pip install '.[receiver]')",
        file=sys.stderr,
    )
    return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except ModuleNotFoundError as exc:
        return _missing_extra(exc)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    resolve_admin_token(args)
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
