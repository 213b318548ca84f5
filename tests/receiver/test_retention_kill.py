"""`otel-audit retention run` killed (SIGKILL) mid-run, then rerun: nothing lost, nothing doubled.
Real processes on their own chDB path (one path per process)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from conftest import REPO

POPULATE = r"""
import datetime as dt, json, sys, uuid
from receiver.store.chdb_store import ChdbStore
from receiver.model import AuditEvent, events_to_table
store = ChdbStore(sys.argv[1])
today = dt.datetime.now(dt.timezone.utc).date()
events = []
for tenant in ("acme", "globex"):
    for back in range(200, 300):
        d = today - dt.timedelta(days=back)
        for i in range(20):
            events.append(AuditEvent(
                id=str(uuid.uuid4()), tenant_id=tenant, user_id=f"u{i}", action="read",
                resource_type="doc", event_name="audit.doc.read",
                created_at=dt.datetime(d.year, d.month, d.day, i, tzinfo=dt.timezone.utc),
                received_at=dt.datetime(d.year, d.month, d.day, 23, tzinfo=dt.timezone.utc),
                retain_until=d + dt.timedelta(days=3650), hot_until=d + dt.timedelta(days=30)))
store.insert(events_to_table(events))
json.dump({e.id: [e.tenant_id, e.created_at.date().isoformat()] for e in events}, open(sys.argv[2], "w"))
store.close()
"""


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "receiver.cli", *args]


def test_killed_archive_run_reruns_without_loss_or_duplicates(tmp_path: Path):
    data, archive, expected_path = tmp_path / "data", tmp_path / "archive", tmp_path / "expected.json"
    config = tmp_path / "otel-audit.yaml"
    config.write_text(
        f"store: chdb://{data}\nretention: {{default: {{hot_days: 30, retain_days: 3650}}}}\n"
        f"archive: {{path: {archive}}}\n"
    )
    subprocess.run([sys.executable, "-c", POPULATE, str(data), str(expected_path)], cwd=REPO, check=True)
    expected: dict[str, list[str]] = json.loads(expected_path.read_text())

    proc = subprocess.Popen(cli("retention", "run", "--config", str(config)), cwd=REPO)
    deadline = time.monotonic() + 120
    while len(list(archive.glob("*/*/manifest.json"))) < 5:
        assert proc.poll() is None, "the run ended before it could be killed: give it more days"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.kill()
    proc.wait(10)
    done_before = len(list(archive.glob("*/*/manifest.json")))
    print(f"killed after {done_before} of 200 archive days")
    assert done_before < 200  # killed mid-run

    rerun = subprocess.run(
        cli("retention", "run", "--config", str(config), "--json"), cwd=REPO, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    again = subprocess.run(
        cli("retention", "run", "--config", str(config), "--json"), cwd=REPO, capture_output=True, text=True
    )
    assert json.loads(again.stdout)["rows_archived"] == 0

    # every event exactly once in the archive, each day's manifest matching its files
    seen: Counter[str] = Counter()
    for manifest_path in archive.glob("*/*/manifest.json"):
        manifest = json.loads(manifest_path.read_text())
        rows = 0
        for entry in manifest["files"]:
            table = pq.read_table(manifest_path.parent / entry["name"])
            assert table.num_rows == entry["rows"]
            for event_id, created in zip(
                table.column("id").to_pylist(), table.column("created_at").to_pylist(), strict=True
            ):
                seen[str(event_id)] += 1
                assert created.date().isoformat() == manifest["day"]
            rows += table.num_rows
        assert rows == manifest["rows"] == 20
    assert set(seen) == set(expected) and max(seen.values()) == 1

    # and none of them is left in the hot store
    status = subprocess.run(
        cli("retention", "status", "--config", str(config), "--json"),
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0, status.stderr
    tenants = {t["tenant"]: t for t in json.loads(status.stdout)["tenants"]}
    assert tenants["acme"]["archived_days"] == tenants["globex"]["archived_days"] == 100
    assert tenants["acme"]["archived_rows"] == 2000
    left = subprocess.run(
        cli("query", "--config", str(config), "--event-name", "audit.doc.read", "--format", "jsonl"),
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert left.returncode == 0 and left.stdout == ""
