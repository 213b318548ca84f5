"""``otel-audit init [DIR]`` (SPEC section 13): a commented ``otel-audit.yaml`` with fresh random
tokens, a signing key outside the data directory, the checkpoint publish directory, and the
commands to run next. Paths in the file are relative to DIR (``serve`` runs there)."""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from receiver.commands.common import CliError
from receiver.config import DEFAULT_ADMIN, DEFAULT_GRPC, DEFAULT_HTTP

CONFIG_FILE = "otel-audit.yaml"
#: shell snippets (`. app.env`): what an app needs, and the CLI's admin token
APP_ENV_FILE = "app.env"
ADMIN_ENV_FILE = "admin.env"
DATA_DIR = "otel-audit-data"
KEYS_DIR = "keys"
CHECKPOINTS_DIR = "checkpoints"
ARCHIVE_DIR = "otel-audit-archive"
#: token_urlsafe(24) gives 32 characters of [A-Za-z0-9_-]: valid in an HTTP header, twice the minimum
TOKEN_BYTES = 24

_TEMPLATE = """\
# otel-audit receiver configuration, written by `otel-audit init`.
# Reference of every field: docs/CONFIGURATION.md. Values may name environment variables: ${{...}}.
# Relative paths are relative to the directory `otel-audit serve` runs in (this one).

# The embedded ClickHouse (chDB) data directory; or clickhouse://user:pass@host:8123/db
store: chdb://./{data}

listen:
  grpc: {grpc}     # OTLP/gRPC: apps send here
  http: {http}     # OTLP/HTTP (POST /v1/logs)
  admin: {admin}    # admin API and UI: http://{admin}/

# Apps send `authorization: Bearer <token>`; the token fixes the tenant of their events.
# Tokens must be at least 16 characters; these are 32 random ones. Keep them secret.
ingest_tokens:
  - token: "{ingest_token}"
    tenant: {tenant}

# Who may read the audit log (UI, API, `--server` commands). role: auditor (search, export)
# or admin (also retention, holds, quarantine); tenants: ids, or ['*'] for all.
admin_tokens:
  - token: "{admin_token}"
    role: admin
    tenants: ['*']
    name: {admin_name}

retention:
  default: soc2          # soc2 (365 days), pci (90 searchable / 365) or hipaa (365 / 2190)

archive:
  path: ./{archive}

# Tamper evidence (docs/INTEGRITY.md): checkpoints are signed with this key, which lives outside
# the data directory; give its .pub to auditors (`otel-audit verify --public-key`).
integrity:
  key: ./{keys}/otel-audit-signing.key
  # key_in_data_dir: false  # true would allow a signing key inside the data directory: keep it false
  publish:                # where signed checkpoints are published besides the store
    - dir: ./{checkpoints}
    # - url: https://audit-witness.example.com/checkpoints
    #   headers: {{authorization: "Bearer ..."}}

# The tenant-facing viewer your app embeds for its customers (docs/VIEWER.md): off until it has
# a secret (32+ random characters: `python -c "import secrets; print(secrets.token_urlsafe(32))"`).
# viewer:
#   secrets: ["<32+ random characters; the first signs, all verify>"]
#   frame_ancestors: ["https://app.example.com"]
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init",
        help="write a commented otel-audit.yaml with fresh tokens and a signing key, then say what next",
    )
    p.add_argument("dir", nargs="?", default=".", help="directory to set up (default: the current one)")
    p.add_argument("--tenant", default="default", help="tenant of the ingest token (default: default)")
    p.set_defaults(run=run)


def new_token() -> str:
    """32 random URL-safe characters, starting with a letter or digit (never read as a flag)."""
    while not (token := secrets.token_urlsafe(TOKEN_BYTES))[0].isalnum():
        pass
    return token


def render(tenant: str, ingest_token: str, admin_token: str) -> str:
    return _TEMPLATE.format(
        data=DATA_DIR,
        grpc=DEFAULT_GRPC,
        http=DEFAULT_HTTP,
        admin=DEFAULT_ADMIN,
        ingest_token=ingest_token,
        admin_token=admin_token,
        tenant=tenant,
        admin_name="admin",
        archive=ARCHIVE_DIR,
        keys=KEYS_DIR,
        checkpoints=CHECKPOINTS_DIR,
    )


def run(args: argparse.Namespace) -> int:
    from receiver.integrity.checkpoints import generate_key

    root = Path(args.dir)
    for name in (CONFIG_FILE, APP_ENV_FILE, ADMIN_ENV_FILE):
        if (root / name).exists():
            raise CliError(
                f"{root / name} exists; refusing to overwrite it (remove it, or init another directory)"
            )
    if (root / KEYS_DIR / "otel-audit-signing.key").exists():
        raise CliError(f"{root / KEYS_DIR} already holds a signing key; refusing to overwrite it")
    if not args.tenant.strip():
        raise CliError("--tenant must not be empty")
    ingest_token, admin_token = new_token(), new_token()
    try:
        root.mkdir(parents=True, exist_ok=True)
        private_key, public_key = generate_key(root / KEYS_DIR)
        (root / CHECKPOINTS_DIR).mkdir(exist_ok=True)
        for name, text in (
            (CONFIG_FILE, render(args.tenant.strip(), ingest_token, admin_token)),
            (APP_ENV_FILE, app_env(ingest_token)),
            (ADMIN_ENV_FILE, admin_env(admin_token)),
        ):
            fd = os.open(root / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # they hold tokens
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
    except OSError as exc:
        raise CliError(f"cannot set up {root}: {exc}") from exc
    print(next_steps(root, args.tenant.strip(), ingest_token, admin_token, private_key, public_key))
    return 0


def app_env(ingest_token: str) -> str:
    return (
        "# what an app needs to send audit events here (otel_audit reads these): `. app.env`\n"
        f"export OTEL_AUDIT_ENDPOINT=http://{DEFAULT_GRPC}\n"
        f"export OTEL_AUDIT_TOKEN={ingest_token}\n"
        "export OTEL_AUDIT_SERVICE_NAME=my-app\n"
    )


def admin_env(admin_token: str) -> str:
    return (
        "# the admin token of the CLI (--server) and the UI's sign-in: `. admin.env`\n"
        f"export OTEL_AUDIT_ADMIN_TOKEN={admin_token}\n"
    )


def next_steps(
    root: Path, tenant: str, ingest_token: str, admin_token: str, private_key: Path, public_key: Path
) -> str:
    return f"""\
wrote {root / CONFIG_FILE} (tokens: 32 random characters each; the minimum is 16)
signing key: {private_key} (private, outside the data directory); give auditors {public_key}
checkpoints are published to {root / CHECKPOINTS_DIR}

next:
  1. run the receiver (leave it running):
       cd {root} && otel-audit serve --config {CONFIG_FILE}
  2. point your app at it (ingest token of tenant {tenant!r}; the same lines are in {root / APP_ENV_FILE}):
       export OTEL_AUDIT_ENDPOINT=http://{DEFAULT_GRPC}
       export OTEL_AUDIT_TOKEN={ingest_token}
       export OTEL_AUDIT_SERVICE_NAME=my-app
  3. open the UI at http://{DEFAULT_ADMIN}/ and sign in with the admin token; for the CLI
     (the same line is in {root / ADMIN_ENV_FILE}):
       export OTEL_AUDIT_ADMIN_TOKEN={admin_token}
       otel-audit query --server http://{DEFAULT_ADMIN}
       otel-audit verify --server http://{DEFAULT_ADMIN}"""
