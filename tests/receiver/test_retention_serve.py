"""Retention inside `otel-audit serve`: the scheduler archives old events ingested over OTLP,
and hold/status/restore/run work through the admin API (admin tokens only) with --server."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
import time

import httpx
from conftest import REPO, ServeProcess
from otlp_builders import audit_attrs, export, log_record, request

ADMIN = "admin-token-0123456789"
AUDITOR = "auditor-token-0123456789"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_scheduler_archives_and_admin_routes_drive_holds_and_restore(tmp_path):
    archive = tmp_path / "archive"
    config = tmp_path / "otel-audit.yaml"
    config.write_text(
        "admin_tokens:\n"
        f"  - {{token: {ADMIN}, role: admin, tenants: ['*'], name: ops}}\n"
        f"  - {{token: {AUDITOR}, role: auditor, tenants: [acme]}}\n"
        "retention: {default: pci, interval_seconds: 1}\n"
        f"archive: {{path: {archive}}}\n"
    )
    serve = ServeProcess(tmp_path / "data", ("--config", str(config))).start()
    try:
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=200)
        records = [
            log_record(audit_attrs(enduser__id=f"u{i}"), time_ns=int(old.timestamp() * 1e9) + i)
            for i in range(5)
        ]
        assert export(serve.grpc_endpoint, request(records)).partial_success.rejected_log_records == 0
        manifest = archive / "tenant=acme" / f"date={old.date().isoformat()}" / "manifest.json"
        deadline = time.monotonic() + 60
        while not manifest.exists():
            assert time.monotonic() < deadline, serve.log_path.read_text()[-2000:]
            time.sleep(0.1)
        doc = json.loads(manifest.read_text())
        assert doc["rows"] == 5
        # the rows' log and leaf range, and the signed checkpoint that sealed it before they left the store
        ((origin, leaves),) = doc["chains"].items()
        assert origin.startswith("otel-audit/acme/") and leaves == [0, 4]
        (checkpoint,) = doc["files"][0]["checkpoints"]
        assert checkpoint["chain_id"] == origin and checkpoint["note"].startswith(f"{origin}\n")
        assert int(checkpoint["note"].split("\n")[1]) >= 5

        server = ("--server", serve.admin_url, "--token", ADMIN)
        # the log still verifies with its archived leaves gone from the store: the retention
        # record (an audit event in the log) covers them, once it is committed (journal → store)
        deadline = time.monotonic() + 30
        while (
            verified := cli("verify", "--tenant", "acme", *server)
        ).returncode and time.monotonic() < deadline:
            time.sleep(0.5)
        assert verified.returncode == 0, verified.stdout + serve.log_path.read_text()[-3000:]
        added = cli("hold", "add", "--tenant", "acme", "--reason", "case 7", *server)
        assert added.returncode == 0 and "set" in added.stdout, added.stderr
        listed = cli("hold", "list", "--json", *server)
        assert [(h["tenant_id"], h["reason"], h["actor"]) for h in json.loads(listed.stdout)["holds"]] == [
            ("acme", "case 7", "ops")
        ]
        denied = cli("hold", "remove", "--tenant", "acme", "--server", serve.admin_url, "--token", AUDITOR)
        assert denied.returncode == 2 and "403" in denied.stderr and len(denied.stderr.splitlines()) == 1
        assert httpx.post(f"{serve.admin_url}/api/retention/run").status_code == 401

        status = json.loads(cli("retention", "status", "--json", "--tenant", "acme", *server).stdout)
        (acme,) = status["tenants"]
        assert (acme["preset"], acme["hot_days"], acme["retain_days"]) == ("pci", 90, 365)
        assert (
            acme["archived_days"] == 1
            and acme["archived_rows"] == 5
            and acme["legal_hold"]["reason"] == "case 7"
        )

        since, until = old.date().isoformat(), (old.date() + dt.timedelta(days=1)).isoformat()
        restored = cli("restore", "--tenant", "acme", "--since", since, "--until", until, "--json", *server)
        assert restored.returncode == 0, restored.stderr
        report = json.loads(restored.stdout)
        assert report["rows"] == 5 and report["verified"] and report["days"] == [since]
        # archive + restore keep proofs valid: a restored event's proof holds offline, checked
        # against the tree hashes that never left the store
        import pyarrow.parquet as pq

        (archived_file,) = manifest.parent.glob("events-*.parquet")
        event_id = str(pq.read_table(archived_file).column("id")[2].as_py())
        proof = cli("proof", event_id, *server)
        assert proof.returncode == 0, proof.stderr
        saved = tmp_path / "proof.json"
        saved.write_text(proof.stdout)
        key = tmp_path / "data-integrity" / "keys" / "otel-audit-signing.key"  # default: beside the data
        vkey = cli("pubkey", "--key", str(key)).stdout.strip()
        held = cli("verify-proof", str(saved), "--public-key", vkey)
        assert held.returncode == 0 and held.stdout.startswith("proof holds: leaf "), held.stderr
        assert event_id in base64.b64decode(json.loads(proof.stdout)["canonical"]).decode()
        ran = cli("retention", "run", *server)
        assert ran.returncode == 0 and "legal holds: acme" in ran.stdout, ran.stderr
        removed = cli("hold", "remove", "--tenant", "acme", *server)
        assert removed.returncode == 0 and "lifted" in removed.stdout
    finally:
        serve.stop()
