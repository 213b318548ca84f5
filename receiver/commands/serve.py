"""``otel-audit serve``: run the receiver until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse

from receiver.commands.common import CliError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the receiver: OTLP/gRPC, OTLP/HTTP, admin API and UI")
    p.add_argument("--config", help="YAML config file (SPEC section 4)")
    p.add_argument("--store", help="store URL (default chdb://./otel-audit-data)")
    p.add_argument("--grpc-listen", help="OTLP/gRPC address (default 127.0.0.1:4317)")
    p.add_argument("--http-listen", help="OTLP/HTTP address (default 127.0.0.1:4318)")
    p.add_argument("--admin-listen", help="admin API/UI address (default 127.0.0.1:8318)")
    p.add_argument(
        "--ack",
        choices=("journal", "store"),
        help="acknowledge exports once in the local journal (default) or once in the store (ingest.ack)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from receiver.config import ConfigError, load_config
    from receiver.hardening.files import set_private_umask
    from receiver.server import Receiver
    from receiver.store.base import StoreUnavailable

    set_private_umask()  # whatever this process (and the embedded engine) creates is owner-only
    from receiver.memory.allocator import configure as configure_allocators

    configure_allocators()  # before the receiver's threads and allocations (receiver/memory)
    try:
        config = load_config(
            args.config,
            store=args.store,
            grpc_listen=args.grpc_listen,
            http_listen=args.http_listen,
            admin_listen=args.admin_listen,
            ack=args.ack,
        )
        receiver = Receiver(config)
        receiver.start()
    except (ConfigError, StoreUnavailable, OSError, ValueError) as exc:
        raise CliError(str(exc)) from exc

    def announce() -> None:
        print(
            f"otel-audit serving: OTLP/gRPC {config.listen.grpc}, OTLP/HTTP http://{config.listen.http}, "
            f"admin http://{config.listen.admin} "
            f"(store {config.store}, acknowledged once in the {config.ingest.ack})",
            flush=True,
        )
        if config.sql_endpoint is not None:
            print(
                f"read-only SQL endpoint (ClickHouse HTTP): http://{config.sql_endpoint.listen}", flush=True
            )

    receiver.serve_forever(on_ready=announce)
    return 0
