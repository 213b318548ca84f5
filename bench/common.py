"""Shared bench helpers: the OTLP workload, `otel-audit serve` in a subprocess, CPU/RSS probes,
percentiles and the result report (printed, and appended as JSON for ``bench.all``)."""

from __future__ import annotations

import gzip
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
RECORDS_PER_REQUEST = 512
#: where each bench appends its result line (bench.all sets it)
RESULTS_ENV = "OTEL_AUDIT_BENCH_RESULTS"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- the workload ---------------------------------------------------------------------------
_ID_MARK = "{:08x}-0000-4000-8000-00000000beef"


def template_request(tenants: int = 1, records: int = RECORDS_PER_REQUEST) -> tuple[bytes, list[int]]:
    """One serialized ExportLogsServiceRequest of ``records`` realistic audit records (12 attributes,
    a ~100-byte ``audit.changes``) and the byte offsets of each record's 36-character event id, so
    fresh ids can be patched in without re-encoding (same length, so the encoding stays valid)."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    def kv(key: str, value: Any) -> KeyValue:
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=value))

    now = time.time_ns()
    out: list[LogRecord] = []
    for i in range(records):
        changes = json.dumps(
            {"status": {"old": "draft", "new": "sent"}, "amount": {"old": 1000 + i, "new": 1250 + i}},
            separators=(",", ":"),
        )
        changes += " " * max(0, 100 - len(changes))
        attrs = [
            kv("audit.event.id", _ID_MARK.format(i)),
            kv("audit.tenant.id", f"tenant-{i % tenants:02d}"),
            kv("enduser.id", f"user-{i % 97}"),
            kv("audit.actor.type", "user"),
            kv("audit.action", "update"),
            kv("audit.outcome", "success"),
            kv("audit.resource.type", "invoice"),
            kv("audit.resource.id", f"inv-{i:06d}"),
            kv("audit.changes", changes),
            kv("client.address", f"203.0.113.{i % 250}"),
            kv("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) bench/1.0"),
            kv("http.response.status_code", 200),
        ]
        out.append(
            LogRecord(
                time_unix_nano=now - i * 1000,
                event_name="audit.invoice.update",
                attributes=attrs,
                trace_id=os.urandom(16),
                span_id=os.urandom(8),
            )
        )
    resource = Resource(attributes=[kv("service.name", "billing")])
    req = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=out)])]
    )
    data = req.SerializeToString()
    offsets = []
    for i in range(records):
        pos = data.find(_ID_MARK.format(i).encode())
        assert pos >= 0
        offsets.append(pos)
    return data, offsets


def fresh_requests(template: bytes, offsets: list[int], count: int) -> list[bytes]:
    """``count`` copies of the template, each record with a new random UUID."""
    out: list[bytes] = []
    for _ in range(count):
        buf = bytearray(template)
        for pos in offsets:
            buf[pos : pos + 36] = str(uuid.UUID(bytes=os.urandom(16), version=4)).encode()
        out.append(bytes(buf))
    return out


# -- the receiver in a subprocess -----------------------------------------------------------
@dataclass
class Serve:
    """`otel-audit serve` on a fresh data directory (or ``data_dir``) and free ports."""

    data_dir: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout: float = 90.0) -> Serve:
        self._tmp = tempfile.TemporaryDirectory(prefix="otel-audit-bench-")
        if self.data_dir is None:
            self.data_dir = Path(self._tmp.name) / "data"
        cmd = [sys.executable, "-m", "receiver.cli", "serve", "--store", f"chdb://{self.data_dir}"]
        cmd += ["--grpc-listen", self.grpc_endpoint, "--http-listen", f"127.0.0.1:{self.http_port}"]
        cmd += ["--admin-listen", f"127.0.0.1:{self.admin_port}"]
        if self.config:
            import yaml

            path = Path(self._tmp.name) / "config.yaml"
            path.write_text(yaml.safe_dump(self.config))
            cmd += ["--config", str(path)]
        self.log_path = Path(self._tmp.name) / "serve.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.admin_url}/healthz", timeout=1).status_code == 200:
                    self.ps = psutil.Process(self.proc.pid)
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve not healthy: {self.log_path.read_text()[-2000:]}")

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def thread_cpu(self) -> dict[str, float]:
        """CPU seconds per thread kind (Linux /proc): Python threads are all named "python";
        the engine's are MergeMutate (background merges), ThreadPool (query work), …"""
        out: dict[str, float] = {}
        task_dir = Path(f"/proc/{self.ps.pid}/task")
        if not task_dir.is_dir():
            return out
        tick = os.sysconf("SC_CLK_TCK")
        for task in task_dir.iterdir():
            try:
                name = (task / "comm").read_text().strip().rstrip("0123456789_") or "?"
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        return out

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def peak_rss_mb(self) -> float:
        """The most RSS the receiver has held so far (VmHWM in /proc/<pid>/status)."""
        for line in Path(f"/proc/{self.ps.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024  # kB
        return float("nan")

    def rss_split_mb(self) -> dict[str, float]:
        """RSS, its anonymous part (what the process allocated) and the rest (file-backed: mostly
        chDB's library code pages, clean and reclaimable), from /proc/<pid>/smaps_rollup."""
        fields: dict[str, float] = {}
        for line in Path(f"/proc/{self.ps.pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, _, rest = line.partition(":")
            fields[key] = float(rest.split()[0]) / 1024  # kB
        rss, anon = fields["Rss"], fields["Anonymous"]
        return {"rss": rss, "anonymous": anon, "file_backed": rss - anon}

    def metric(self, name: str) -> float:
        """Sum of a Prometheus series from /metrics."""
        text = httpx.get(f"{self.admin_url}/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        self._tmp.cleanup()

    def __enter__(self) -> Serve:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_python(module: str, *args: str, timeout: float = 1800) -> dict[str, Any]:
    """Run ``python -m module args`` in a fresh process (its own chDB path); parse the last line
    of its stdout as JSON."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{module} failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the report -----------------------------------------------------------------------------
def report(bench: str, rows: list[tuple[str, str]], result: dict[str, Any]) -> None:
    """Print ``rows`` (label, value) and record ``result`` for bench.all."""
    width = max(len(label) for label, _ in rows)
    print(f"\n== {bench} ==")
    for label, value in rows:
        print(f"  {label.ljust(width)}  {value}")
    sys.stdout.flush()
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"bench": bench, **result}) + "\n")


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "MET" if ok else "NOT MET"


def counting_hook() -> tuple[ThreadingHTTPServer, list[int]]:
    """A loopback webhook in this process that gunzips each POST and counts its NDJSON lines
    (``lines[0]``; stream benches' destination). Returns the running server and the counter."""
    lines = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        # keeps the connection open between batches, as a SIEM's endpoint does
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - the http.server interface
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with lock:
                lines[0] += gzip.decompress(body).count(b"\n")
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, lines
