"""Every option and positional of every `otel-audit` command says what it is (issue 20: demo
--admin-listen/--grpc-listen, retention {run,status} and hold --json had no help); the token
variables are separate; the base install's missing extra is one readable line."""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap

from conftest import REPO

from receiver.cli import build_parser
from receiver.commands.common import resolve_admin_token


def test_every_argument_has_help() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.help and action.dest != "help":
                missing.append(f"{name} {action.option_strings or action.dest}")
    assert not missing, missing


def test_admin_token_variable_and_the_deprecated_one(capsys) -> None:
    args = argparse.Namespace(server="http://127.0.0.1:1", token=None)
    resolve_admin_token(args, {"OTEL_AUDIT_TOKEN": "old-admin-token-0123"})
    assert args.token == "old-admin-token-0123"
    assert "OTEL_AUDIT_TOKEN as the admin token is deprecated" in capsys.readouterr().err
    args = argparse.Namespace(server="http://127.0.0.1:1", token="from-admin-var-0123")
    resolve_admin_token(args, {"OTEL_AUDIT_TOKEN": "ingest-token-012345"})
    assert args.token == "from-admin-var-0123" and capsys.readouterr().err == ""
    args = argparse.Namespace(store="chdb:///x", token=None)  # no --server: no token needed, no line
    resolve_admin_token(args, {"OTEL_AUDIT_TOKEN": "ingest-token-012345"})
    assert args.token is None and capsys.readouterr().err == ""


def test_admin_token_comes_from_its_own_variable() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from receiver.cli import build_parser; "
            "print(build_parser().parse_args(['query', '--server', 'http://x']).token)",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "OTEL_AUDIT_ADMIN_TOKEN": "admin-var-0123456789",
            "OTEL_AUDIT_TOKEN": "ingest-var-0123456789",
        },
    )
    assert out.stdout.strip() == "admin-var-0123456789", out.stderr


_BLOCKED = textwrap.dedent(
    """
    import sys, importlib.abc
    class Blocker(importlib.abc.MetaPathFinder):  # the base install: no receiver extra
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in {"yaml", "pydantic", "chdb", "pyarrow", "starlette", "rich"}:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Blocker())
    from receiver.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_base_install_says_to_install_the_receiver_extra() -> None:
    for argv in (["--help"], ["serve"], ["init", "/nonexistent/x"]):
        done = subprocess.run(
            [sys.executable, "-c", _BLOCKED, *argv], capture_output=True, text=True, cwd=REPO, timeout=60
        )
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [
            "otel-audit: error: the receiver's dependencies are not installed (no module 'pydantic'): "
            "pip install 'otel-audit[receiver]' (from a checkout: pip install '.[receiver]')"
        ]
