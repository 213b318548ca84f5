"""The ORM integrations' deferred emission: the commit only queues, a worker emits; nothing is lost."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from emitter_support import Captured, captured_fixture, exported_at_exit  # noqa: F401
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import create_engine, insert, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

import otel_audit
from otel_audit import model_changes
from otel_audit.context import AuditContext, reset_context, set_context
from otel_audit.deferred import DEFERRED
from otel_audit.sqlalchemy import track


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    qty: Mapped[int] = mapped_column(default=0)


@pytest.fixture
def engine(tmp_path) -> Iterator[Any]:
    eng = create_engine(f"sqlite:///{tmp_path / 'items.db'}")
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


@contextmanager
def audit_context_of(context: AuditContext) -> Iterator[None]:
    token = set_context(context)
    try:
        yield
    finally:
        reset_context(token)


class ThreadOfEmit(LogRecordProcessor):
    """Notes the thread each record is emitted on."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def on_emit(self, log_record: Any) -> None:
        self.threads.append(threading.current_thread().name)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_the_commit_only_queues_and_the_worker_emits(engine, captured: Captured):
    seen = ThreadOfEmit()
    captured.provider.add_log_record_processor(seen)
    factory = sessionmaker(engine)
    track(factory)
    with factory() as s:
        s.add(Item(id=1, name="a"))
        s.commit()
    deadline = time.monotonic() + 30
    while not seen.threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen.threads == ["otel-audit-deferred"]
    assert [a["audit.resource.id"] for a in captured.attrs()] == ["1"]


def test_shutdown_loses_nothing_committed_from_many_threads(engine):
    exporter = InMemoryLogRecordExporter()
    otel_audit.configure(exporter=exporter, service_name="t")
    factory = sessionmaker(engine)
    tracker = track(factory)
    per_thread, threads = 200, 4
    one_writer = threading.Lock()  # SQLite has one writer; the commits still race the worker

    def work(t: int) -> None:
        for i in range(per_thread):
            with one_writer, factory() as s:
                s.add(Item(id=t * 10_000 + i, name="x"))
                s.commit()

    try:
        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(120)
        with factory() as s:  # a bulk statement's rows, too: one queued job, 800 events
            s.execute(update(Item).values(qty=1), execution_options={"synchronize_session": "fetch"})
            s.commit()
    finally:
        otel_audit.shutdown()  # no force_flush first: shutdown itself must emit what is queued
        tracker.untrack()
    got = [dict(r.log_record.attributes) for r in exporter.get_finished_logs()]
    creates = sorted(a["audit.resource.id"] for a in got if a["audit.action"] == "create")
    updates = sorted(a["audit.resource.id"] for a in got if a["audit.action"] == "update")
    expected = sorted(str(t * 10_000 + i) for t in range(threads) for i in range(per_thread))
    assert creates == expected
    assert updates == expected
    assert len({a["audit.event.id"] for a in got}) == len(got)
    assert DEFERRED.pending() == 0


def test_a_rollback_queues_nothing(engine, captured: Captured):
    factory = sessionmaker(engine)
    track(factory)
    queued = DEFERRED.stats.queued
    with factory() as s:
        s.add(Item(id=5, name="gone"))
        s.flush()
        s.execute(update(Item).values(qty=2), execution_options={"synchronize_session": "fetch"})
        s.rollback()
    otel_audit.force_flush()
    assert captured.records() == []
    assert DEFERRED.stats.queued == queued


def test_a_full_queue_makes_the_caller_emit_itself(engine, captured: Captured, monkeypatch):
    monkeypatch.setattr(DEFERRED, "max_events", 0)
    factory = sessionmaker(engine)
    track(factory)
    inline = DEFERRED.stats.inline
    with factory() as s:
        s.add(Item(id=9, name="now"))
        s.commit()
    # read without a flush: the event was emitted on the committing thread
    got = [r.log_record.attributes["audit.resource.id"] for r in captured.exporter.get_finished_logs()]
    assert got == ["9"]
    assert DEFERRED.stats.inline == inline + 1


def test_the_event_keeps_the_commits_time_and_trace(engine, captured: Captured):
    factory = sessionmaker(engine)
    track(factory)
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("request") as span, factory() as s:
        s.add(Item(id=3, name="t"))
        before = time.time_ns()
        s.commit()
        after = time.time_ns()
    time.sleep(0.05)  # the worker emits later than the commit
    record = captured.one()
    assert before <= record.timestamp <= after
    assert record.trace_id == span.get_span_context().trace_id
    assert record.span_id == span.get_span_context().span_id


def test_events_still_queued_at_interpreter_exit_are_exported(tmp_path):
    # no flush, no shutdown: the exit hooks must emit and export the 50 events
    body = """
        from sqlalchemy import create_engine
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
        from otel_audit.sqlalchemy import track

        class Base(DeclarativeBase):
            pass

        class Item(Base):
            __tablename__ = "items"
            id: Mapped[int] = mapped_column(primary_key=True)

        engine = create_engine("sqlite://")
        Base.metadata.create_all(engine)
        factory = sessionmaker(engine)
        track(factory)
        with factory() as s:
            s.add_all([Item(id=i) for i in range(50)])
            s.commit()
    """
    assert sorted(exported_at_exit(tmp_path, body)) == list(range(50))


def test_a_bulk_statements_rows_do_not_overflow_the_sdk_queue(engine, monkeypatch):
    monkeypatch.delenv("OTEL_BLRP_MAX_QUEUE_SIZE", raising=False)
    exporter = InMemoryLogRecordExporter()
    otel_audit.configure(exporter=exporter, service_name="t")  # the SDK's queue: 2048 records
    factory = sessionmaker(engine)
    tracker = track(factory)
    rows = 12_000
    try:
        with factory() as s:
            s.execute(insert(Item), [{"id": i, "name": "n"} for i in range(rows)])
            s.commit()
        assert otel_audit.force_flush()
        exporter.clear()
        with factory() as s:
            s.execute(update(Item).values(qty=7), execution_options={"synchronize_session": "fetch"})
            s.commit()
        assert otel_audit.force_flush()
        got = [r.log_record.attributes["audit.resource.id"] for r in exporter.get_finished_logs()]
        assert sorted(got, key=int) == [str(i) for i in range(rows)]
    finally:
        otel_audit.shutdown()
        tracker.untrack()


def test_a_lazily_resolved_route_is_answered_at_commit_not_on_the_worker(engine, captured: Captured):
    factory = sessionmaker(engine)
    track(factory)
    routing = {"route": "/items/{id}"}  # what the framework knows while the request is handled
    context = AuditContext(user_id="u", http_method="POST", route_resolver=lambda: routing["route"])
    with audit_context_of(context), factory() as s:
        s.add(Item(id=4, name="r"))
        s.commit()
    routing["route"] = None  # the request is over: the framework's answer is gone
    (attributes,) = captured.attrs()
    assert attributes["http.route"] == "/items/{id}"
    assert attributes["enduser.id"] == "u"


class BatchSizes(InMemoryLogRecordExporter):
    """Keeps the records and notes the size of each export."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def export(self, batch: Any) -> Any:
        self.sizes.append(len(batch))
        return super().export(batch)


@pytest.mark.skipif(not gc.isenabled(), reason="the part size follows the collector's young generation")
def bulk_update_tracked(engine: Any, exporter: BatchSizes, rows: int = 3_000) -> tuple[Any, int]:
    """``rows`` items stored, the exporter cleared, then one tracked bulk ``update()`` of them all
    (``synchronize_session="fetch"``: an event per row), flushed; (the tracker, ``rows``)."""
    factory = sessionmaker(engine)
    tracker = track(factory)
    try:
        with factory() as s:
            s.execute(insert(Item), [{"id": i, "name": "n"} for i in range(rows)])
            s.commit()
        assert otel_audit.force_flush()
        exporter.clear()
        exporter.sizes.clear()
        with factory() as s:
            s.execute(update(Item).values(qty=7), execution_options={"synchronize_session": "fetch"})
            s.commit()
        assert otel_audit.force_flush()
    except BaseException:  # the test's own cleanup is not reached: leave no tracker or pipeline behind
        tracker.untrack()
        otel_audit.shutdown()
        raise
    return tracker, rows


def test_a_bulk_statements_records_are_exported_before_the_young_generation_fills(engine, monkeypatch):
    # each record waiting in the SDK's queue is ~6 objects the collector tracks: a part of the job
    # that outgrew the young generation would be promoted to the old one, whose growth triggers
    # the full collections that pause the application's threads
    monkeypatch.delenv("OTEL_BLRP_MAX_QUEUE_SIZE", raising=False)
    monkeypatch.setattr(model_changes, "SLOW_FLUSH_S", 60.0)  # a stall on a loaded box: still small parts
    exporter = BatchSizes()
    otel_audit.configure(exporter=exporter, service_name="t")
    tracker, rows = bulk_update_tracked(engine, exporter)
    try:
        got = [r.log_record.attributes["audit.resource.id"] for r in exporter.get_finished_logs()]
        assert sorted(got, key=int) == [str(i) for i in range(rows)]
        assert sum(exporter.sizes) == rows
        assert max(exporter.sizes) * 6 < gc.get_threshold()[0], exporter.sizes
    finally:
        otel_audit.shutdown()
        tracker.untrack()


class SlowExport(BatchSizes):
    """An export that takes 150 ms (a receiver timing out)."""

    def export(self, batch: Any) -> Any:
        time.sleep(0.15)
        return super().export(batch)


def test_a_slow_export_makes_the_rest_of_the_job_use_large_parts(engine, monkeypatch):
    # small parts are for the collector; while exports are slow the worker would wait once per part
    monkeypatch.delenv("OTEL_BLRP_MAX_QUEUE_SIZE", raising=False)
    exporter = SlowExport()
    otel_audit.configure(exporter=exporter, service_name="t")
    tracker, rows = bulk_update_tracked(engine, exporter)
    try:
        assert len(exporter.get_finished_logs()) == rows
        assert len(exporter.sizes) < 12, exporter.sizes  # parts of 87 would be 35 exports
    finally:
        otel_audit.shutdown()
        tracker.untrack()
