"""`otel-audit export` as a user runs it: straight from a store, and through a running `serve`,
to CSV, JSON lines and Parquet; errors are one line and leave no file behind."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
from conftest import REPO
from otlp_builders import audit_attrs, export, log_record, request

from receiver.formats import CSV_HEADER


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env=env,
    )


def test_export_from_the_store_and_through_serve(serve_process, tmp_path):
    serve = serve_process().start()
    records = [
        log_record(audit_attrs(enduser__id=f"user-{i}", audit__tenant__id="acme" if i % 2 else "globex"))
        for i in range(20)
    ]
    records.append(log_record(audit_attrs(enduser__id="=cmd|' /C calc'!A0", audit__tenant__id="acme")))
    assert export(serve.grpc_endpoint, request(records)).partial_success.rejected_log_records == 0

    # through the running server (it owns the embedded store)
    out = tmp_path / "via-server.csv"
    done = run_cli(
        "export", "--server", serve.admin_url, "--format", "csv", "--out", str(out), "--tenant", "acme"
    )
    assert done.returncode == 0, done.stderr
    # 11 events, and the export's own audit event (recorded before the first byte)
    assert done.stderr.strip() == f"exported 12 event(s) to {out} ({out.stat().st_size:,} bytes)"
    assert out.read_bytes().startswith(CSV_HEADER)
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 12 and {r["tenant_id"] for r in rows} == {"acme"}
    assert [r["event_name"] for r in rows if r["resource_type"] == "audit_log"] == ["audit.audit_log.export"]
    assert "'=cmd|' /C calc'!A0" in {r["user_id"] for r in rows}
    parquet = tmp_path / "via-server.parquet"
    assert (
        run_cli(
            "export", "--server", serve.admin_url, "--format", "parquet", "--out", str(parquet)
        ).returncode
        == 0
    )
    table = pq.read_table(parquet)
    assert table.num_rows >= 21 and {"id", "created_at", "attributes"} <= set(table.column_names)
    refused = run_cli(
        "export",
        "--server",
        serve.admin_url,
        "--format",
        "jsonl",
        "--out",
        str(tmp_path / "x.jsonl"),
        "--since",
        "soon",
    )
    assert refused.returncode == 2 and not (tmp_path / "x.jsonl").exists()
    assert (
        refused.stderr.strip()
        == "otel-audit export: error: since: 'soon' is not an ISO 8601 date or time, nor now / now-<N><s|m|h|d|w>"
    )
    serve.stop()

    # straight from the store: every format, and the export itself is on record
    store_url = f"chdb://{serve.data_dir}"
    jsonl = tmp_path / "direct.jsonl"
    done = run_cli(
        "export", "--store", store_url, "--format", "jsonl", "--out", str(jsonl), "--tenant", "globex"
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]
    data = [e for e in events if e["resource_type"] != "audit_log"]
    assert len(data) == 10 and {e["tenant_id"] for e in events} == {"globex"}
    assert all(e["changes"] is None and e["attributes"] == {} for e in data)
    direct_csv = tmp_path / "direct.csv"
    assert (
        run_cli("export", "--store", store_url, "--format", "csv", "--out", str(direct_csv)).returncode == 0
    )
    assert len(list(csv.DictReader(io.StringIO(direct_csv.read_text())))) >= 21
    trail = run_cli(
        "query", "--store", store_url, "--event-name", "audit.audit_log.export", "--format", "jsonl"
    )
    exports = [json.loads(line) for line in trail.stdout.splitlines()]
    by_format = {e["attributes"]["audit.export.format"]: e for e in exports}
    assert set(by_format) == {"csv", "parquet", "jsonl"}  # the server's two, then the store's two
    assert by_format["jsonl"]["user_agent"] == "otel-audit export" and "@" in by_format["jsonl"]["user_id"]
    assert by_format["csv"]["tenant_id"] in ("acme", "globex")


def test_export_errors_are_one_line_and_leave_no_file(tmp_path):
    missing_dir = tmp_path / "no" / "such" / "dir" / "out.csv"
    failed = run_cli(
        "export", "--store", f"chdb://{tmp_path}/store", "--format", "csv", "--out", str(missing_dir)
    )
    assert failed.returncode == 2
    assert (
        failed.stderr.startswith("otel-audit export: error: cannot write")
        and len(failed.stderr.splitlines()) == 1
    )
    assert not missing_dir.parent.exists()
    unreachable = run_cli(
        "export", "--server", "http://127.0.0.1:9", "--format", "csv", "--out", str(tmp_path / "u.csv")
    )
    assert unreachable.returncode == 2 and "export from http://127.0.0.1:9 failed" in unreachable.stderr
    assert not (tmp_path / "u.csv").exists() and not (tmp_path / "u.csv.partial").exists()
    env = dict(os.environ)
    bad_format = run_cli("export", "--format", "xml", "--out", "x", env=env)
    assert bad_format.returncode == 2 and "invalid choice: 'xml'" in bad_format.stderr
