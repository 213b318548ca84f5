"""``otel-audit demo``: a receiver on an embedded store, an instrumented sample app, traffic."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="receiver on an embedded store + an instrumented sample app + traffic")
    p.add_argument("--data", default="./otel-audit-demo-data", help="embedded store directory for the demo")
    p.add_argument("--rounds", type=int, default=20, help="rounds of traffic (default 20)")
    p.add_argument(
        "--admin-listen",
        default="127.0.0.1:8318",
        help="admin API/UI address (default 127.0.0.1:8318; a free port when taken)",
    )
    p.add_argument(
        "--grpc-listen",
        default="127.0.0.1:4317",
        help="OTLP/gRPC address (default 127.0.0.1:4317; a free port when taken)",
    )
    p.add_argument("--exit", action="store_true", help="exit after the summary instead of serving on")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from receiver.demo.run import run_demo

    return run_demo(args)
