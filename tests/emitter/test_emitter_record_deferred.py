"""``record()`` and the middlewares' own events: built on the caller's thread, handed to the SDK by
the deferred worker, in call order with the ORM integrations' events; nothing lost."""

from __future__ import annotations

import threading
import time
from typing import Any

from emitter_support import Captured, captured_fixture, exported_at_exit  # noqa: F401
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

import otel_audit
from otel_audit.deferred import DEFERRED
from otel_audit.sqlalchemy import track
from otel_audit.wsgi import AuditMiddleware, header_resolver


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)


class ThreadOfEmit(LogRecordProcessor):
    """Notes the thread each record is handed to the SDK on."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def on_emit(self, log_record: Any) -> None:
        self.threads.append(threading.current_thread().name)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _wait_for(seen: ThreadOfEmit, n: int) -> None:
    deadline = time.monotonic() + 30  # the worker wakes every 0.5 s; a loaded box is slower
    while len(seen.threads) < n and time.monotonic() < deadline:
        time.sleep(0.01)


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"ok"]


def _environ(path: str) -> dict[str, Any]:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "", "REMOTE_ADDR": "203.0.113.5"}


def test_record_and_the_middlewares_event_are_emitted_by_the_worker(captured: Captured) -> None:
    seen = ThreadOfEmit()
    captured.provider.add_log_record_processor(seen)
    app = AuditMiddleware(_app, user_resolver=header_resolver("X-User"), sensitive=["GET /docs/{id}=doc"])
    event_id = otel_audit.record(action="export", resource_type="report", resource_id="q3")
    assert event_id  # the id is known on the caller's thread
    assert b"".join(app({**_environ("/docs/7"), "HTTP_X_USER": "alice"}, lambda *a: None)) == b"ok"
    _wait_for(seen, 2)
    assert seen.threads == ["otel-audit-deferred", "otel-audit-deferred"]
    first, second = captured.attrs()
    assert first["audit.event.id"] == event_id
    assert (second["audit.resource.id"], second["enduser.id"], second["http.route"]) == (
        "7",
        "alice",
        "/docs/7",
    )


def test_events_leave_in_call_order_with_the_orm_events(captured: Captured) -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    factory = sessionmaker(engine)
    tracker = track(factory)
    try:
        otel_audit.record(action="read", resource_type="report", resource_id="before")
        with factory() as s:
            s.add(Note(id=1))
            s.commit()
        otel_audit.record(action="read", resource_type="report", resource_id="after")
        order = [a["audit.resource.id"] for a in captured.attrs()]
    finally:
        tracker.untrack()
        engine.dispose()
    assert order == ["before", "1", "after"]


def test_the_event_keeps_the_calls_time_and_trace(captured: Captured) -> None:
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("request") as span:
        before = time.time_ns()
        otel_audit.record(action="read", resource_type="doc", resource_id="t")
        after = time.time_ns()
    time.sleep(0.05)  # the worker emits later than the call
    record = captured.one()
    assert before <= record.timestamp <= after
    assert record.trace_id == span.get_span_context().trace_id
    assert record.span_id == span.get_span_context().span_id


def test_a_full_queue_makes_the_caller_emit_itself(captured: Captured, monkeypatch) -> None:
    monkeypatch.setattr(DEFERRED, "max_events", 0)
    inline = DEFERRED.stats.inline
    otel_audit.record(action="read", resource_type="doc", resource_id="now")
    # read without a flush: the event was emitted on the calling thread
    got = [r.log_record.attributes["audit.resource.id"] for r in captured.exporter.get_finished_logs()]
    assert got == ["now"]
    assert DEFERRED.stats.inline == inline + 1


def test_records_still_queued_at_interpreter_exit_are_exported(tmp_path) -> None:
    # no flush, no shutdown: the exit hooks must emit and export the 50 events, in order
    body = """
        for i in range(50):
            otel_audit.record(action="read", resource_type="doc", resource_id=str(i))
    """
    assert exported_at_exit(tmp_path, body) == list(range(50))
