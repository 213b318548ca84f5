"""`otel-audit keygen | pubkey | verify` as a user runs them, against a real `serve` that is
killed with SIGKILL and restarted: the chain continues and verifies clean, a tamper fails."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO
from otlp_builders import audit_attrs, export, log_record, request

ADMIN = "admin-token-0123456789"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=180
    )


def send(serve, tenant: str, n: int) -> None:
    records = [log_record(audit_attrs(audit__tenant__id=tenant, enduser__id=f"u{i}")) for i in range(n)]
    assert export(serve.grpc_endpoint, request(records)).partial_success.rejected_log_records == 0


def test_keygen_pubkey_serve_kill_restart_verify_and_tamper(serve_process, tmp_path: Path):
    keys = tmp_path / "keys"
    made = run_cli("keygen", "--out", str(keys))
    assert made.returncode == 0, made.stderr
    private, public = keys / "otel-audit-signing.key", keys / "otel-audit-signing.pub"
    assert private.stat().st_mode & 0o077 == 0
    again = run_cli("keygen", "--out", str(keys))
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    exported = run_cli("pubkey", "--key", str(private))
    assert exported.returncode == 0 and exported.stdout == public.read_text().splitlines()[-1] + "\n"
    assert re.fullmatch(r"otel-audit\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}\n", exported.stdout)

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"integrity: {{key: '{public}'}}\n")  # a public key cannot sign
    refused = run_cli("serve", "--config", str(bad), "--store", f"chdb://{tmp_path}/unused")
    assert refused.returncode == 2 and "integrity.key" in refused.stderr and "signing key" in refused.stderr

    cps = tmp_path / "checkpoints"
    config = tmp_path / "otel-audit.yaml"
    config.write_text(
        f"admin_tokens:\n  - {{token: {ADMIN}, role: admin, tenants: ['*']}}\n"
        f"integrity: {{key: '{private}', publish: [{{dir: '{cps}'}}], checkpoint_interval: 0.5}}\n"
    )
    serve = serve_process(("--config", str(config))).start()
    send(serve, "acme", 50)
    send(serve, "globex", 10)
    deadline = time.monotonic() + 20
    while len(list(cps.rglob("*.note"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(list(cps.rglob("*.note"))) >= 4  # two registrations, two seals
    send(serve, "acme", 20)
    serve.kill()  # SIGKILL: the tree edge must come back from the store

    serve.start()
    send(serve, "acme", 30)
    via = run_cli("verify", "--server", serve.admin_url, "--token", ADMIN)
    assert via.returncode == 0, via.stdout + via.stderr
    lines = via.stdout.splitlines()
    assert re.fullmatch(r"acme: 100 events in 1 log, \d+ checkpoints?, intact.*", lines[0]), lines
    assert re.fullmatch(r"globex: 10 events in 1 log, \d+ checkpoints?, intact.*", lines[1]), lines
    denied = run_cli("verify", "--server", serve.admin_url, "--token", "wrong-token-0123456789")
    assert denied.returncode == 2 and "401" in denied.stderr
    assert serve.stop() == 0  # SIGTERM seals what is left

    store = f"chdb://{serve.data_dir}"
    direct = run_cli("verify", "--store", store, "--checkpoints", str(cps), "--public-key", str(public))
    assert direct.returncode == 0, direct.stdout + direct.stderr
    assert re.fullmatch(
        r"acme: 100 events in 1 log, \d+ checkpoints, intact\nglobex: 10 events in 1 log, \d+ checkpoints, intact\n",
        direct.stdout,
    )
    nobody = run_cli("verify", "--store", store, "--tenant", "nobody", "--public-key", str(public))
    assert nobody.returncode == 0 and nobody.stdout.startswith(
        "nobody: 0 events in 0 logs, 0 checkpoints, intact"
    )

    tamper = (
        "import sys; from receiver.store.chdb_store import ChdbStore; from receiver.store.sql import Statement;"
        "s = ChdbStore(sys.argv[1]); s._command(Statement(\"ALTER TABLE audit.audit_events UPDATE user_id = 'mallory'"
        " WHERE tenant_id = 'acme' AND seq = 5 SETTINGS mutations_sync = 1\")); s.close()"
    )
    subprocess.run([sys.executable, "-c", tamper, str(serve.data_dir)], check=True, cwd=REPO, timeout=120)
    broken = run_cli("verify", "--store", store, "--checkpoints", str(cps), "--public-key", str(public))
    assert broken.returncode == 1, broken.stdout + broken.stderr
    first = broken.stdout.splitlines()[0]
    assert (
        first.startswith("acme: ")
        and "DAMAGED: modified at log otel-audit/acme/" in first
        and " leaf 5:" in first
    )
    assert broken.stdout.splitlines()[1].startswith("globex: 10 events in 1 log, ")
