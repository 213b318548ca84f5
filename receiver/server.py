"""``otel-audit serve``: one process owning the store, with every listener around it.

Start order: every listen address probed (a taken one ends the start before the store is
opened) → store (its directories made owner-only) → writer (with ``ingest.ack: journal``, the
journal: locked, recovered, its leftovers queued for the store first) → OTLP consumer → gRPC
and HTTP listeners → admin HTTP listener. Stop order is the reverse, so every acknowledged request's rows are in the store
(or, if the store cannot take them in time, still in the journal for the next start) and every
queued one is either stored or refused before the store closes.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from receiver.admin.access import AdminAuthenticator
from receiver.admin.api import build_admin_app
from receiver.admin.trail import AccessTrail
from receiver.admin.web_guard import HostPolicy
from receiver.alerts.evaluator import Evaluator, build_evaluator
from receiver.config import Config, split_host_port
from receiver.hardening import fdlimit, ports
from receiver.hardening.connections import ConnectionLimits, uvicorn_kwargs
from receiver.hardening.files import make_private
from receiver.ingest import IngestConsumer
from receiver.integrity.chain import Chainer
from receiver.integrity.setup import CheckpointScheduler, resolve
from receiver.journal import Journal
from receiver.journal.committer import JournalWriter
from receiver.journal.record import report_at_start
from receiver.retention.scheduler import RetentionScheduler, build_retention
from receiver.retention.service import RetentionService
from receiver.store import AuditStore, data_subdirectory, open_store
from receiver.streams.service import Streams, build_streams
from receiver.telemetry import ReceiverMetrics
from receiver.transport.fairness import FairSlots
from receiver.transport.otlp_grpc import GrpcReceiver
from receiver.transport.otlp_http import build_otlp_http_app
from receiver.writer import EventWriter, GroupCommitWriter

log = logging.getLogger("otel_audit.receiver")


@dataclass
class Receiver:
    config: Config
    store: AuditStore | None = None
    metrics: ReceiverMetrics = field(default_factory=ReceiverMetrics)
    grpc_port: int = 0
    http_port: int = 0
    admin_port: int = 0
    _writer: EventWriter | None = None
    _consumer: IngestConsumer | None = None
    _grpc: GrpcReceiver | None = None
    _http: uvicorn.Server | None = None
    _http_thread: threading.Thread | None = None
    _admin: uvicorn.Server | None = None
    _admin_thread: threading.Thread | None = None
    _checkpoints: CheckpointScheduler | None = None
    sql_port: int = 0
    _sql: Any = None
    retention: RetentionService | None = None
    _scheduler: RetentionScheduler | None = None
    alerts: Evaluator | None = None
    streams: Streams | None = None
    _connection_cap: int = 1024

    def start(self) -> None:
        self.config.check_exposure()
        # before the store: a taken port must not leave the embedded engine half-opened
        ports.probe(self._listen_addresses())
        self._connection_cap = fdlimit.connection_cap(
            self.config.limits.max_connections,
            len(self._listen_addresses()),
            self.config.limits.fd_reserve,
            fdlimit.raise_fd_limit(),
        )
        opened = self.store is None
        try:
            self._start(opened)
        except BaseException:
            self.stop_listeners()
            if opened and self.store is not None:
                self.store.close()
            raise

    def _listen_addresses(self) -> dict[str, str]:
        listen = self.config.listen
        out = {"OTLP/gRPC": listen.grpc, "OTLP/HTTP": listen.http, "the admin API": listen.admin}
        if self.config.sql_endpoint is not None:
            out["the SQL endpoint"] = self.config.sql_endpoint.listen
        return out

    def _connection_limits(self) -> ConnectionLimits:
        limits = self.config.limits
        return ConnectionLimits(
            self._connection_cap, limits.max_connections_per_address, limits.header_timeout_seconds
        )

    def _make_private(self) -> None:
        """Owner-only modes on every directory holding audit data (files 0600, dirs 0700)."""
        paths = [getattr(self.store, "path", None), self.config.integrity.checkpoint_dir]
        if self.config.ingest.ack == "journal":
            paths.append(journal_dir(self.config, self.store))  # type: ignore[arg-type]
        if "://" not in self.config.archive.path and Path(self.config.archive.path).is_dir():
            paths.append(self.config.archive.path)  # made 0700 by the archive job otherwise
        for path in paths:
            if path:
                make_private(path)
        key = self.config.integrity.key
        if key and Path(key).is_file():
            try:
                Path(key).chmod(0o600)
            except OSError as exc:  # a read-only secret mount: its owner decides
                log.warning("cannot make the signing key %s owner-only: %s", key, exc)

    def _start(self, open_own_store: bool) -> None:
        if open_own_store:
            self.store = open_store(self.config.store)
        assert self.store is not None
        self._make_private()
        integrity = resolve(self.config.integrity, self.store)
        limits = self.config.ingest
        if integrity.key_in_data_dir:
            log.warning(
                "!!! the checkpoint signing key %s is INSIDE the store's data directory"
                " (integrity.key_in_data_dir: true): whoever can rewrite the data can re-sign it;"
                " only a published copy (integrity.publish) elsewhere will show such a rewrite !!!",
                integrity.key_path,
            )
        self._checkpoints = CheckpointScheduler(
            self.store, integrity, self.config.integrity.checkpoint_interval
        )
        sealer = self._checkpoints.checkpointer
        chainer = Chainer(self.store, integrity.instance_id, sealer.register if sealer else None)
        if limits.ack == "journal":
            journal = Journal(
                journal_dir(self.config, self.store),
                max_bytes=limits.journal_max_bytes,
                segment_bytes=limits.journal_segment_bytes,
            )
            self._writer = JournalWriter(
                self.store,
                self.metrics,
                journal,
                chainer=chainer,
                max_batch_rows=limits.max_batch_rows,
                interval_seconds=limits.commit_interval_seconds,
            )
            report_at_start(journal, self.store, self.metrics)
        else:
            self._writer = GroupCommitWriter(
                self.store,
                self.metrics,
                chainer=chainer,
                max_queue_rows=limits.max_queue_rows,
                max_queue_bytes=limits.max_queue_bytes,
                max_batch_rows=limits.max_batch_rows,
            )
        self._checkpoints.start()
        consumer = self._consumer = IngestConsumer(self.config, self._writer, self.metrics)
        hostile = self.config.limits
        self._grpc = GrpcReceiver(
            consumer,
            self.config.listen.grpc,
            max_message_bytes=limits.grpc_max_message_bytes,
            slots=FairSlots(
                hostile.grpc_max_concurrent_calls,
                hostile.max_in_flight_per_token,
                hostile.max_in_flight_per_address,
            ),
            handshake_timeout=hostile.header_timeout_seconds,
        )
        self._grpc.start()
        self.grpc_port = self._grpc.port
        otlp_http = build_otlp_http_app(
            consumer,
            limits.http_max_body_bytes,
            slots=FairSlots(
                hostile.http_max_in_flight, hostile.max_in_flight_per_token, hostile.max_in_flight_per_address
            ),
            body_timeout=hostile.body_timeout_seconds,
        )
        self._http, self._http_thread, self.http_port = _serve_asgi(
            otlp_http, self.config.listen.http, "OTLP/HTTP", self._connection_limits()
        )
        trail = AccessTrail(lambda request, identity: consumer.ingest(request, identity, "internal"))
        # before the admin listener: /healthz answering means every listener is up
        if self.config.sql_endpoint is not None:
            from receiver.chhttp import start_sql_endpoint

            self._sql = start_sql_endpoint(
                self.store, self.config.sql_endpoint, trail, uvicorn_kwargs(self._connection_limits())
            )
            self.sql_port = self._sql.port
        self.retention = build_retention(
            self.store, self.config, lambda request, identity: consumer.ingest(request, identity, "internal")
        )
        self.alerts = build_evaluator(
            self.store, self.config.alerts, trail.ingest, self.metrics.registry, integrity.instance_id
        )
        self.streams = build_streams(
            self.store, self.config.streams, trail.ingest, self.metrics.registry, integrity.instance_id
        )
        if self.streams is not None:  # a stream's backlog over its limit raises an alert
            self.streams.alerts = self.alerts
            chainer.listeners.append(self.streams.heads.advanced)  # caught-up streams wake on commits
        app = build_admin_app(
            self.store,
            AdminAuthenticator(self.config.admin_tokens, self.config.viewer),
            self.metrics,
            trail,
            integrity=self.config.integrity,
            retention=self.retention,
            alerts=self.alerts,
            hosts=HostPolicy.for_listen(self.config.listen.admin, self.config.admin.allowed_hosts),
            metrics_access=self.config.metrics,
            sources=self.config.sources,
            streams=self.streams,
            web=self.config.admin,
        )
        self._admin, self._admin_thread, self.admin_port = _serve_asgi(
            app, self.config.listen.admin, "the admin API", self._connection_limits()
        )
        self._scheduler = RetentionScheduler(self.retention, self.config.retention.interval_seconds)
        self._scheduler.start()
        if self.alerts is not None:
            self.alerts.start()
        if self.streams is not None:
            self.streams.start()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every acknowledged event is in the store (a no-op with ``ack: store``)."""
        flush = getattr(self._writer, "flush", None)
        return flush(timeout) if flush is not None else True

    def stop(self) -> None:
        """Stop listening, finish queued commits, close the store."""
        self.stop_listeners()
        if self.store is not None:
            self.store.close()

    def stop_listeners(self) -> None:
        """Everything but closing the store (a caller that passed its own store keeps it)."""
        if self._sql is not None:
            self._sql.stop()
            self._sql = None
        if self._scheduler is not None:
            self._scheduler.stop()
        if self.alerts is not None:
            self.alerts.stop()
            self.alerts = None
        if self.streams is not None:
            self.streams.stop()
            self.streams = None
        if self._grpc is not None:
            self._grpc.stop()
        for server, thread in ((self._http, self._http_thread), (self._admin, self._admin_thread)):
            if server is not None:
                server.should_exit = True
                if thread is not None:
                    thread.join(10)
        if self._consumer is not None:  # after the transports: its batcher thread ends here
            self._consumer.close()
            self._consumer = None
        if self._writer is not None:
            self._writer.close()
        if self._checkpoints is not None:
            self._checkpoints.stop()
            try:
                self._checkpoints.seal_all()  # seal what the last commits added
            except Exception:  # noqa: BLE001 - the next start's first tick seals it instead
                log.exception("final checkpoint failed")
            self._checkpoints = None

    def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Run until SIGINT/SIGTERM, then stop cleanly. ``on_ready`` runs once the signal
        handlers are in place (what it prints is a promise that a SIGTERM stops cleanly)."""
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        if on_ready is not None:
            on_ready()
        stop.wait()
        log.info("stopping")
        self.stop()


def journal_dir(config: Config, store: AuditStore) -> Path:
    """``ingest.journal_dir``, else ``<data dir>/journal`` for chDB (``…/journal/<database>``
    for a database other than the default), else ``./otel-audit-journal``."""
    if config.ingest.journal_dir:
        return Path(config.ingest.journal_dir)
    return data_subdirectory(store, "journal") or Path.cwd() / "otel-audit-journal"


def _serve_asgi(
    app: object, listen: str, what: str, limits: ConnectionLimits | None = None
) -> tuple[uvicorn.Server, threading.Thread, int]:
    """Run ``app`` under uvicorn in a thread; return once it listens (and on which port)."""
    host, port = split_host_port(listen)
    server = uvicorn.Server(
        uvicorn.Config(
            app,  # type: ignore[arg-type]
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            **uvicorn_kwargs(limits),
        )
    )
    thread = threading.Thread(target=server.run, name=f"otel-audit-{what}", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise OSError(f"cannot listen for {what} on {listen}")
        threading.Event().wait(0.02)
    return server, thread, server.servers[0].sockets[0].getsockname()[1]
