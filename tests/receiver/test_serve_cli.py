"""`otel-audit serve` and `otel-audit query` as a user runs them: real processes, real kills."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

from conftest import REPO
from otlp_builders import audit_attrs, export, log_record, request


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_data_survives_kill_and_restart_and_cli_reads_it(serve_process):
    serve = serve_process().start()
    records = [log_record(audit_attrs(enduser__id=f"user-{i}", audit__tenant__id="acme")) for i in range(40)]
    response = export(serve.grpc_endpoint, request(records))
    assert response.partial_success.rejected_log_records == 0
    serve.kill()  # acknowledged means durable: SIGKILL must not lose any of it

    # while nothing holds the store, the CLI reads it directly
    direct = run_cli("query", "--store", f"chdb://{serve.data_dir}", "--format", "jsonl", "--limit", "1000")
    assert direct.returncode == 0, direct.stderr
    assert sorted(json.loads(line)["user_id"] for line in direct.stdout.splitlines()) == sorted(
        f"user-{i}" for i in range(40)
    )

    serve.start()
    export(serve.grpc_endpoint, request([log_record(audit_attrs(enduser__id="after-restart"))]))
    # while serve holds the embedded store, the CLI goes through it
    locked = run_cli("query", "--store", f"chdb://{serve.data_dir}")
    assert locked.returncode == 2
    assert "use --server" in locked.stderr and len(locked.stderr.strip().splitlines()) == 1
    via = run_cli(
        "query", "--server", serve.admin_url, "--format", "csv", "--limit", "1000", "--user", "after-restart"
    )
    assert via.returncode == 0, via.stderr
    rows = list(csv.DictReader(io.StringIO(via.stdout)))
    assert [r["user_id"] for r in rows] == ["after-restart"]
    all_rows = run_cli("query", "--server", serve.admin_url, "--format", "jsonl", "--limit", "2000")
    events = [json.loads(line) for line in all_rows.stdout.splitlines()]
    # every read through the API is itself audited (audit.audit_log.read, actor = the token)
    assert len([e for e in events if e["resource_type"] != "audit_log"]) == 41
    assert {e["event_name"] for e in events if e["resource_type"] == "audit_log"} == {"audit.audit_log.read"}
    table = run_cli("query", "--server", serve.admin_url, "--user", "user-7")
    assert "user-7" in table.stdout and "1 event(s)" in table.stdout


def test_cli_errors_are_one_readable_line(tmp_path):
    bad_date = run_cli("query", "--store", f"chdb://{tmp_path}/x", "--since", "last tuesday")
    assert bad_date.returncode == 2
    assert (
        bad_date.stderr.strip()
        == "otel-audit query: error: since: 'last tuesday' is not an ISO 8601 date or time, nor now / now-<N><s|m|h|d|w>"
    )
    bad_config = tmp_path / "c.yaml"
    bad_config.write_text("store: chdb://./x\nlisten: {grpc: 0.0.0.0:4317}\n")
    exposed = run_cli("serve", "--config", str(bad_config))
    assert exposed.returncode == 2
    assert "not a loopback address and no ingest_tokens" in exposed.stderr
    missing_env = tmp_path / "e.yaml"
    missing_env.write_text("ingest_tokens:\n  - {token: '${NO_SUCH_TOKEN_VAR}', tenant: acme}\n")
    env_error = run_cli("serve", "--config", str(missing_env))
    assert env_error.returncode == 2 and "NO_SUCH_TOKEN_VAR is not set" in env_error.stderr
