"""``make fault``: real faults against real ``otel-audit serve`` processes, counted.

Each scenario streams raw OTLP over gRPC (fresh event ids, a client that retries what it is told
to retry, as the OTel SDK does) to a ``serve`` process on its own chDB directory, injects its
fault, lets everything settle, stops ``serve`` and reads the store back in a process of its own
(after a TTL merge, so an event the TTL would drop later is counted as gone now). Per scenario:

- sent: distinct events the client tried to deliver; acknowledged: those an export answered OK
  for (not rejected in partial success); stored: distinct sent events in the store;
- lost: acknowledged but not stored; duplicated: stored rows beyond one per event;
- verify: ``otel-audit verify`` on the store afterwards (intact / damaged; ``api-error`` when
  the read API failed to list the stored events; ``error`` when the scenario itself broke).

Exits 1 when any scenario lost an acknowledged event, stored a duplicate or left the chain
damaged. Not part of the default pytest run (about two minutes); tests/receiver/test_fault_run.py
runs one quick scenario to keep this script working.

    python tests/fault/run.py [--events N] [--only NAME ...] [--list]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from conftest import ServeProcess  # noqa: E402 - the tests' serve helper, on sys.path above
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc  # noqa: E402
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest  # noqa: E402
from otlp_builders import audit_attrs, log_record, request  # noqa: E402

ACME, GLOBEX = "acme-fault-token-0123456789", "globex-fault-token-0123456789"
RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}
Key = tuple[str, str]  # (tenant, event id)


@dataclass
class Tally:
    name: str
    sent: set[Key] = field(default_factory=set)
    acked: set[Key] = field(default_factory=set)
    rows: Counter[Key] = field(default_factory=Counter)
    verify: str = "-"
    note: str = ""
    skipped: str = ""

    @property
    def stored(self) -> int:
        return len(self.sent & set(self.rows))

    @property
    def lost(self) -> int:
        return len(self.acked - set(self.rows))

    @property
    def duplicated(self) -> int:
        return sum(n - 1 for n in self.rows.values() if n > 1)

    @property
    def failed(self) -> bool:
        return not self.skipped and (
            self.lost > 0 or self.duplicated > 0 or self.verify not in ("intact", "-")
        )


# -- the client ---------------------------------------------------------------------------------
class Client:
    """One gRPC channel; ``deliver`` retries a request on retryable codes until ``give_up`` s."""

    def __init__(self, endpoint: str, token: str | None = None) -> None:
        self.endpoint = endpoint
        self.metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._channel = grpc.insecure_channel(endpoint)
        self._stub = logs_service_pb2_grpc.LogsServiceStub(self._channel)

    def deliver(self, req: ExportLogsServiceRequest, give_up: float = 120.0) -> int | None:
        """Records rejected in partial success once acknowledged; None: never acknowledged."""
        deadline = time.monotonic() + give_up
        while True:
            try:
                answer = self._stub.Export(req, metadata=self.metadata, timeout=10)
                return answer.partial_success.rejected_log_records
            except grpc.RpcError as exc:
                if exc.code() not in RETRYABLE or time.monotonic() > deadline:
                    return None
            time.sleep(0.2)

    def close(self) -> None:
        self._channel.close()


def batch(
    tenant: str | None, n: int, ids: list[str] | None = None, **attrs: object
) -> tuple[list[Key], ExportLogsServiceRequest]:
    ids = ids or [str(uuid.uuid4()) for _ in range(n)]
    records = [log_record(audit_attrs(audit__event__id=i, audit__tenant__id=tenant, **attrs)) for i in ids]
    return [(tenant or "acme", i) for i in ids], request(records, service_name="fault-run")


def send(
    tally: Tally, client: Client, keys: list[Key], req: ExportLogsServiceRequest, give_up: float = 120.0
) -> bool:
    """Deliver a request whose records are all valid: acknowledged means all of them."""
    tally.sent.update(keys)
    rejected = client.deliver(req, give_up)
    if rejected is None:
        return False
    if rejected:
        raise RuntimeError(f"{tally.name}: {rejected} valid records rejected")
    tally.acked.update(keys)
    return True


class Stream(threading.Thread):
    """Batches of ``size`` fresh events at about ``rate`` events/s until ``total`` were handled."""

    def __init__(
        self,
        tally: Tally,
        client: Client,
        total: int,
        size: int = 50,
        rate: float = 500,
        give_up: float = 120.0,
    ) -> None:
        super().__init__(daemon=True)
        self.tally, self.client, self.total, self.size, self.rate, self.give_up = (
            tally,
            client,
            total,
            size,
            rate,
            give_up,
        )
        self.done = 0

    error: BaseException | None = None

    def run(self) -> None:
        try:
            for _ in range(0, self.total, self.size):
                started = time.monotonic()
                keys, req = batch("acme", self.size)
                send(self.tally, self.client, keys, req, self.give_up)
                self.done += self.size
                time.sleep(max(0.0, self.size / self.rate - (time.monotonic() - started)))
        except BaseException as exc:  # noqa: BLE001 - re-raised by finish()
            self.error = exc

    def finish(self, timeout: float = 300) -> None:
        self.join(timeout)
        if self.error is not None:
            raise self.error

    def wait_for(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.done < n and self.is_alive():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.tally.name}: the stream did not reach {n} events")
            time.sleep(0.05)


# -- serve and the store -------------------------------------------------------------------------
_READ = """
import json, sys
from receiver.store.chdb_store import ChdbStore
from receiver.store.sql import Statement
store = ChdbStore(sys.argv[1])
store.execute(Statement("OPTIMIZE TABLE audit.audit_events FINAL"))  # what a TTL merge does, now
rows = store.query_table(Statement("SELECT toString(tenant_id) AS t, toString(id) AS i FROM audit.audit_events"))
print(json.dumps(list(zip(rows.column("t").to_pylist(), rows.column("i").to_pylist()))))
"""


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO))


def read_store(tally: Tally, data_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _READ, str(data_dir)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env=env(),
    )
    if out.returncode != 0:
        raise RuntimeError(f"reading the store failed: {out.stderr[-2000:]}")
    tally.rows = Counter((t, i) for t, i in json.loads(out.stdout.strip().splitlines()[-1]))
    verify = subprocess.run(
        [sys.executable, "-m", "receiver.cli", "verify", "--store", f"chdb://{data_dir}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env=env(),
    )
    tally.verify = "intact" if verify.returncode == 0 else "damaged"
    if verify.returncode != 0:
        tally.note = (
            tally.note + " " + verify.stdout.strip().splitlines()[-1:][0]
            if verify.stdout.strip()
            else tally.note
        ).strip()


#: every serve of the running scenario, stopped after it even when the scenario failed
STARTED: list[ServeProcess] = []


def serve_in(work: Path, *, ack: str | None = "journal", config: str = "") -> ServeProcess:
    extra: tuple[str, ...] = ()
    if config:
        path = work / "otel-audit.yaml"
        path.write_text(config)
        extra = ("--config", str(path))
    serve = ServeProcess(work / "data", extra, ack=ack)
    STARTED.append(serve)
    return serve


def metric(serve: ServeProcess, name: str) -> float:
    for line in httpx.get(f"{serve.admin_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def settle(serve: ServeProcess, timeout: float = 60) -> None:
    """Wait until the journal has handed everything acknowledged to the store."""
    deadline = time.monotonic() + timeout
    while metric(serve, "otel_audit_writer_queue_rows") > 0 and time.monotonic() < deadline:
        time.sleep(0.2)


@contextlib.contextmanager
def broken_table(data_dir: Path) -> Iterator[None]:
    """The store's table directory replaced by a file: the engine cannot write a part (a real
    write fault; root ignores permissions, so chmod would not do)."""
    table_dir = Path(os.path.realpath(data_dir / "data" / "audit" / "audit_events"))
    aside = table_dir.with_name(table_dir.name + ".aside")
    table_dir.rename(aside)
    table_dir.write_bytes(b"")
    try:
        yield
    finally:
        table_dir.unlink()
        aside.rename(table_dir)


# -- the scenarios ---------------------------------------------------------------------------------
def kill9_mid_stream(tally: Tally, work: Path, events: int, ack: str) -> None:
    serve = serve_in(work, ack=ack).start()
    client = Client(serve.grpc_endpoint)
    stream = Stream(tally, client, events)
    stream.start()
    stream.wait_for(events // 3)
    serve.kill()  # SIGKILL mid-stream: no drain, no flush
    time.sleep(1.0)
    serve.start()
    stream.finish()
    client.close()
    serve.stop()
    read_store(tally, serve.data_dir)


def store_dir_replaced(tally: Tally, work: Path, events: int, ack: str) -> None:
    serve = serve_in(work, ack=ack).start()
    client = Client(serve.grpc_endpoint)
    stream = Stream(tally, client, events)
    stream.start()
    stream.wait_for(events // 3)
    with broken_table(serve.data_dir):
        time.sleep(2.5)  # inserts fail: ack=store refuses (retried), ack=journal holds them
    stream.finish()
    client.close()
    serve.stop()
    read_store(tally, serve.data_dir)


def store_down_then_kill9(tally: Tally, work: Path, events: int) -> None:
    serve = serve_in(work, ack="journal").start()
    client = Client(serve.grpc_endpoint)
    half = max(50, events // 2)
    for _ in range(0, half, 50):
        send(tally, client, *batch("acme", 50))
    with broken_table(serve.data_dir):
        for _ in range(0, half, 50):  # acknowledged from the journal while the store fails
            send(tally, client, *batch("acme", 50), give_up=5)
        time.sleep(1.0)
        serve.kill()
    client.close()
    serve.start()  # replays the journal into the mended store
    serve.stop()
    read_store(tally, serve.data_dir)


def journal_disk_full(tally: Tally, work: Path, events: int) -> None:
    journal = work / "journal"
    journal.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(journal)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        tally.skipped = f"cannot mount a tmpfs ({(mounted.stderr or mounted.stdout).strip()[:80]}): needs root / CAP_SYS_ADMIN"
        return
    try:
        config = f"ingest: {{journal_dir: {journal}, journal_max_bytes: 67108864, journal_segment_bytes: 131072}}\n"
        serve = serve_in(work, config=config).start()
        client = Client(serve.grpc_endpoint)
        refused = 0
        with broken_table(serve.data_dir):
            # nothing drains: the 1 MB disk fills, then exports must be refused, not acknowledged
            while refused < 3 and len(tally.sent) < 20 * events:
                if not send(tally, client, *batch("acme", 50, reason="x" * 400), give_up=1.0):
                    refused += 1
        tally.note = f"{refused} exports refused on a full disk"
        settle(serve)
        for _ in range(3):  # and it takes events again
            send(tally, client, *batch("acme", 50))
        client.close()
        serve.stop()
        read_store(tally, serve.data_dir)
    finally:
        subprocess.run(["umount", "-l", str(journal)], capture_output=True)


def cross_tenant_ids(tally: Tally, work: Path, events: int) -> None:
    config = f"ingest_tokens:\n  - {{token: {ACME}, tenant: acme}}\n  - {{token: {GLOBEX}, tenant: globex}}\n"
    serve = serve_in(work, config=config).start()
    clients = {"acme": Client(serve.grpc_endpoint, ACME), "globex": Client(serve.grpc_endpoint, GLOBEX)}

    def tenant_stream(tenant: str, all_ids: list[list[str]]) -> None:
        for ids in all_ids:
            keys, req = batch(None, 0, ids)
            send(tally, clients[tenant], [(tenant, i) for _, i in keys], req)

    shared = [[str(uuid.uuid4()) for _ in range(50)] for _ in range(max(1, events // 100))]
    threads = [threading.Thread(target=tenant_stream, args=(t, shared)) for t in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    # and each tenant retries its own batches: duplicates within a tenant are still dropped
    tenant_stream("acme", shared[:2])
    for c in clients.values():
        c.close()
    serve.stop()
    read_store(tally, serve.data_dir)
    tally.note = "each id sent by acme and by globex"


def old_and_future_times(tally: Tally, work: Path, events: int) -> None:
    serve = serve_in(work, config="retention: {default: {hot_days: 7, retain_days: 30}}\n").start()
    client = Client(serve.grpc_endpoint)
    now = dt.datetime.now(dt.timezone.utc)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)

    def ns(moment: dt.datetime) -> int:
        return (
            (moment - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1) * 1000
        )

    times = [
        1,
        ns(now - dt.timedelta(days=400)),
        ns(midnight - dt.timedelta(days=30)),
        ns(midnight - dt.timedelta(days=29)),
        ns(now - dt.timedelta(days=29)),
        ns(now - dt.timedelta(days=3)),
        ns(now),
        ns(now + dt.timedelta(minutes=30)),
        ns(now + dt.timedelta(hours=2)),
        ns(dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc)),
    ]
    rejected = 0
    for k in range(max(len(times), events // 20)):
        event_id = str(uuid.uuid4())
        req = request([log_record(audit_attrs(audit__event__id=event_id), time_ns=times[k % len(times)])])
        tally.sent.add(("acme", event_id))
        answer = client.deliver(req)
        if answer == 0:
            tally.acked.add(("acme", event_id))
        elif answer:
            rejected += 1
    tally.note = f"{rejected} rejected in partial success"
    client.close()
    serve.stop()
    read_store(tally, serve.data_dir)


def non_finite_changes(tally: Tally, work: Path, events: int) -> None:
    serve = serve_in(work).start()
    client = Client(serve.grpc_endpoint)
    values = [
        '{"a":{"old":1,"new":NaN}}',
        {"a": {"old": float("inf"), "new": 1.0}},
        '{"a":{"old":1,"new":1e999}}',
        {"a": {"old": 1, "new": 2.5}},
    ]
    rejected = 0
    for k in range(max(len(values), events // 20)):
        event_id = str(uuid.uuid4())
        req = request(
            [log_record(audit_attrs(audit__event__id=event_id, audit__changes=values[k % len(values)]))]
        )
        tally.sent.add(("acme", event_id))
        answer = client.deliver(req)
        if answer == 0:
            tally.acked.add(("acme", event_id))
        elif answer:
            rejected += 1
    settle(serve)
    page = httpx.get(f"{serve.admin_url}/api/events", params={"limit": 500}, timeout=30)
    listed = len(page.json()["events"]) if page.status_code == 200 else 0
    tally.note = f"{rejected} rejected in partial success; /api/events {page.status_code}, {listed} listed"
    client.close()
    serve.stop()
    read_store(tally, serve.data_dir)
    if page.status_code != 200 or listed != len(tally.acked):
        tally.verify = "api-error"  # the read API must list every stored event


SCENARIOS: dict[str, Callable[[Tally, Path, int], None]] = {
    "kill9-mid-stream/journal": lambda t, w, n: kill9_mid_stream(t, w, n, "journal"),
    "kill9-mid-stream/store": lambda t, w, n: kill9_mid_stream(t, w, n, "store"),
    "store-dir-replaced/journal": lambda t, w, n: store_dir_replaced(t, w, n, "journal"),
    "store-dir-replaced/store": lambda t, w, n: store_dir_replaced(t, w, n, "store"),
    "store-down+kill9": store_down_then_kill9,
    "journal-disk-full": journal_disk_full,
    "cross-tenant-ids": cross_tenant_ids,
    "old-and-future-times": old_and_future_times,
    "non-finite-changes": non_finite_changes,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1500, help="events per streaming scenario")
    parser.add_argument("--only", nargs="*", default=None, help="scenario names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(SCENARIOS))
        return 0
    names = args.only or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    header = (
        f"{'scenario':<28} {'sent':>6} {'acked':>6} {'stored':>6} {'lost':>5} {'dup':>4}  {'verify':<8} note"
    )
    print(header, flush=True)
    tallies: list[Tally] = []
    for name in names:
        tally = Tally(name)
        work = Path(tempfile.mkdtemp(prefix="otel-audit-fault-"))
        started = time.monotonic()
        try:
            SCENARIOS[name](tally, work, args.events)
        except Exception as exc:  # noqa: BLE001 - a broken scenario is reported, the rest still run
            tally.verify = "error"
            tally.note = f"{type(exc).__name__}: {str(exc)[:160]}"
            tally.rows = tally.rows or Counter()
            tally.skipped = "" if tally.acked else tally.skipped
        finally:
            while STARTED:
                with contextlib.suppress(Exception):
                    STARTED.pop().stop()
            shutil.rmtree(work, ignore_errors=True)
        tallies.append(tally)
        if tally.skipped:
            print(f"{name:<28} SKIPPED: {tally.skipped}", flush=True)
            continue
        print(
            f"{name:<28} {len(tally.sent):>6} {len(tally.acked):>6} {tally.stored:>6} {tally.lost:>5} "
            f"{tally.duplicated:>4}  {tally.verify:<8} {tally.note} ({time.monotonic() - started:.0f} s)",
            flush=True,
        )
    bad = [t.name for t in tallies if t.failed]
    if bad:
        print(f"FAILED: {', '.join(bad)} (acknowledged events lost, duplicates, damage or an error)")
        return 1
    print(f"ok: {len(tallies) - sum(bool(t.skipped) for t in tallies)} scenarios, no acknowledged event lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
