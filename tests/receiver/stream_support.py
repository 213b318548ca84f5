"""Loopback destinations for the log stream tests: an HTTP collector (webhook, Splunk HEC,
OTLP/HTTP) that can be taken down and brought back, and a syslog TCP collector that parses
RFC 6587 octet-counted frames. Helpers send audit events, read the store's stored order and spy
on the statements a stream runs."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from otlp_builders import audit_attrs, export, log_record, request

from receiver.store.sql import Statement


class StoreSpy:
    """The real store; records the statements it reads with and the rows it inserts (a spy, not
    a fake: everything goes on to the store)."""

    def __init__(self, store) -> None:
        self._store = store
        self.statements: list[str] = []
        self.inserted: list[tuple[str, object]] = []

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def query_table(self, statement):
        self.statements.append(statement.sql)
        return self._store.query_table(statement)

    def insert_into(self, table_name, table):
        self.inserted.append((table_name, table))
        return self._store.insert_into(table_name, table)

    def reads(self, marker: str = "audit_events") -> list[str]:
        """The statements that read the events (``marker`` in their SQL)."""
        return [sql for sql in self.statements if marker in sql]

    def position_inserts(self) -> int:
        """Inserts into the streams' bookkeeping that stored positions."""
        return sum(
            1
            for name, table in self.inserted
            if name == "stream_state" and "position" in table.column("kind").to_pylist()
        )


class HttpCollector:
    """Records every POST it accepts; answers 503 (after reading the body) while ``down``."""

    def __init__(self, status_when_down: int = 503) -> None:
        self.accepted: list[tuple[str, dict[str, str], bytes]] = []
        self.refused = 0
        #: every request's X-Otel-Audit-Batch id and whether it was accepted, in arrival order
        self.attempts: list[tuple[str, bool]] = []
        self.down = False
        #: goes down by itself once it has accepted this many batches
        self.down_after: int | None = None
        self.delay = 0.0
        self.answer_body = b"{}"
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with collector._lock:
                    if collector.down_after is not None and len(collector.accepted) >= collector.down_after:
                        collector.down, collector.down_after = True, None
                    collector.attempts.append((headers.get("x-otel-audit-batch", ""), not collector.down))
                    if collector.down:
                        collector.refused += 1
                        status = status_when_down
                    else:
                        collector.accepted.append((self.path, headers, body))
                        status = 200
                time.sleep(collector.delay)  # stored already; the answer is slow
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(collector.answer_body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[bytes]:
        with self._lock:
            return [
                gzip.decompress(b) if h.get("content-encoding") == "gzip" else b for _, h, b in self.accepted
            ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SyslogCollector:
    """A TCP listener reading octet-counted syslog frames from any number of connections."""

    def __init__(self, wrap: Callable[[socket.socket], socket.socket] | None = None, port: int = 0) -> None:
        self.messages: list[bytes] = []
        self.wrap = wrap
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.wrap is not None:
                try:
                    conn = self.wrap(conn)
                except OSError:
                    conn.close()
                    continue
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b" " in buf:
                    length, rest = buf.split(b" ", 1)
                    if len(rest) < int(length):
                        break
                    self.messages.append(rest[: int(length)])
                    buf = rest[int(length) :]

    def close(self) -> None:
        self._stop = True
        try:  # a thread blocked in accept() keeps a merely closed listener open
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def send_events(grpc: str, tenant: str, n: int, **extra: object) -> list[str]:
    """``n`` events of ``tenant`` in one export; their ids in the order sent."""
    ids = [str(uuid.uuid4()) for _ in range(n)]
    records = [log_record(audit_attrs(audit__event__id=i, audit__tenant__id=tenant, **extra)) for i in ids]
    answer = export(grpc, request(records))
    assert answer.partial_success.rejected_log_records == 0, answer
    return ids


def stored_order(store, tenants: tuple[str, ...] | None = None) -> list[str]:
    """Every stored event's id, per log in index order (the order a stream delivers)."""
    where = "chain_id != ''"
    params: dict[str, object] = {}
    if tenants is not None:
        where += " AND tenant_id IN {t:Array(String)}"
        params["t"] = list(tenants)
    sql = f"SELECT toString(id) AS id FROM {store.database}.audit_events WHERE {where} ORDER BY chain_id, seq"
    return [r["id"] for r in store.query_table(Statement(sql, params)).to_pylist()]


def wait_for(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
