"""Zero loss, zero duplicates, with real processes and real faults: an application process using
``otel_audit`` (SDK exporter + spool) streams to an ``otel-audit serve`` process, and we
(1) kill -9 the receiver mid-stream, (2) start the receiver late, (3) kill -9 the application with
events in its spool, (4) make the store's inserts fail for real. Every emitted id must be stored
exactly once."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest
from delivery_support import REPO, read_ids, run_app, stored_ids
from google.rpc import error_details_pb2, status_pb2
from otlp_builders import audit_attrs, export, log_record, request

pytestmark = pytest.mark.timeout(240)


def wait_lines(path: Path, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and len(read_ids(path)) >= n):
        assert time.monotonic() < deadline, f"the app did not emit {n} events in time"
        time.sleep(0.05)


def finish(app, timeout: float = 180.0) -> str:
    out, _ = app.communicate(timeout=timeout)
    assert app.returncode == 0, out
    assert "DONE" in out
    assert "PENDING" not in out or "PENDING 0" in out, out  # the spool replayed everything
    return out


def assert_exactly_once(data_dir: Path, emitted: list[str]) -> None:
    stored = stored_ids(data_dir)
    assert len(stored) == len(set(stored)), f"{len(stored) - len(set(stored))} duplicates stored"
    missing = set(emitted) - set(stored)
    assert not missing, f"{len(missing)} of {len(emitted)} events lost"
    assert set(stored) == set(emitted)
    # and the tamper-evidence chain over them is whole: no gap from a failed or repeated insert
    verify = subprocess.run(
        [sys.executable, "-m", "receiver.cli", "verify", "--store", f"chdb://{data_dir}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert verify.returncode == 0 and "intact" in verify.stdout, verify.stdout + verify.stderr


@pytest.mark.parametrize("ack", ["store", "journal"])
def test_receiver_killed_mid_stream_then_restarted(serve_process, tmp_path, ack):
    serve = serve_process(ack=ack).start()
    ids = tmp_path / "ids.txt"
    app = run_app(
        f"http://{serve.grpc_endpoint}",
        tmp_path / "spool",
        ids,
        3000,
        "--rate",
        "400",
        "--wait-drained",
        "120",
    )
    wait_lines(ids, 900)
    serve.kill()
    time.sleep(1.0)
    serve.start()
    finish(app)
    serve.stop()
    emitted = read_ids(ids)
    assert len(emitted) == 3000
    assert_exactly_once(serve.data_dir, emitted)


def test_receiver_down_for_a_while_then_back(serve_process, tmp_path):
    serve = serve_process()
    ids = tmp_path / "ids.txt"
    app = run_app(
        f"http://{serve.grpc_endpoint}",
        tmp_path / "spool",
        ids,
        2000,
        "--rate",
        "200",
        "--wait-drained",
        "120",
    )
    wait_lines(ids, 300)
    serve.start()  # the first ~1/3 of the stream went to the spool
    finish(app)
    serve.stop()
    emitted = read_ids(ids)
    assert len(emitted) == 2000
    assert_exactly_once(serve.data_dir, emitted)


def test_app_killed_with_a_spool_delivers_it_after_restart(serve_process, tmp_path):
    serve = serve_process()
    ids = tmp_path / "ids.txt"
    spool = tmp_path / "spool"
    app = run_app(f"http://{serve.grpc_endpoint}", spool, ids, 500, "--hold-when-spooled")
    assert app.stdout is not None
    for line in app.stdout:
        if line.startswith("SPOOLED"):
            break
    app.kill()  # SIGKILL: no shutdown, no flush
    app.wait(10)
    assert list(spool.rglob("*.batch")), "nothing was spooled"
    serve.start()
    restarted = run_app(f"http://{serve.grpc_endpoint}", spool, ids, 100)
    finish(restarted)
    assert not list(spool.rglob("*.batch"))
    serve.stop()
    emitted = read_ids(ids)
    assert len(emitted) == 600
    assert_exactly_once(serve.data_dir, emitted)


def _break_table(data_dir: Path) -> tuple[Path, Path]:
    """A real write fault: the table's data directory becomes a regular file, so the engine cannot
    create the new part's directory (root ignores permissions, so chmod would not do)."""
    table_dir = Path(os.path.realpath(data_dir / "data" / "audit" / "audit_events"))
    assert table_dir.is_dir()
    aside = table_dir.with_name(table_dir.name + ".aside")
    table_dir.rename(aside)
    table_dir.write_bytes(b"")
    return table_dir, aside


def _mend_table(table_dir: Path, aside: Path) -> None:
    table_dir.unlink()
    aside.rename(table_dir)


def test_store_failing_mid_stream_answers_unavailable_and_loses_nothing(serve_process, tmp_path):
    serve = serve_process().start()
    ids = tmp_path / "ids.txt"
    app = run_app(
        f"http://{serve.grpc_endpoint}",
        tmp_path / "spool",
        ids,
        1200,
        "--rate",
        "300",
        "--wait-drained",
        "120",
    )
    before = request([log_record(audit_attrs()) for _ in range(5)])
    export(serve.grpc_endpoint, before)
    wait_lines(ids, 300)
    table_dir, aside = _break_table(serve.data_dir)
    try:
        refused_grpc = request([log_record(audit_attrs()) for _ in range(5)])
        with pytest.raises(grpc.RpcError) as err:
            export(serve.grpc_endpoint, refused_grpc)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        trailers = dict(err.value.trailing_metadata())
        retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
        assert retry.retry_delay.seconds == 5
        refused_http = request([log_record(audit_attrs()) for _ in range(5)])
        r = httpx.post(
            f"http://127.0.0.1:{serve.http_port}/v1/logs",
            content=gzip.compress(refused_http.SerializeToString()),
            headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"},
            timeout=30,
        )
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert status_pb2.Status.FromString(r.content).code == grpc.StatusCode.UNAVAILABLE.value[0]
        time.sleep(1.5)  # the app keeps emitting into the failing store
    finally:
        _mend_table(table_dir, aside)
    # clients retry what was refused, as the status told them to
    export(serve.grpc_endpoint, refused_grpc)
    r = httpx.post(
        f"http://127.0.0.1:{serve.http_port}/v1/logs",
        content=refused_http.SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
        timeout=30,
    )
    assert r.status_code == 200
    finish(app)
    metrics = httpx.get(f"{serve.admin_url}/metrics", timeout=10).text
    assert re.search(r'otel_audit_refused_requests_total\{code="store_(unavailable|error)"\} [1-9]', metrics)
    serve.stop()
    by_hand = [
        kv.value.string_value
        for req in (before, refused_grpc, refused_http)
        for record in req.resource_logs[0].scope_logs[0].log_records
        for kv in record.attributes
        if kv.key == "audit.event.id"
    ]
    emitted = read_ids(ids)
    assert len(emitted) == 1200 and len(by_hand) == 15
    assert_exactly_once(serve.data_dir, emitted + by_hand)
