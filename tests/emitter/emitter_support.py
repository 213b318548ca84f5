"""Helpers shared by the emitter tests: a real SDK LoggerProvider exporting to memory, ASGI calls."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

import otel_audit


class Captured:
    """The in-memory exporter plus helpers to read what was emitted."""

    def __init__(self) -> None:
        self.exporter = InMemoryLogRecordExporter()
        self.provider = LoggerProvider(shutdown_on_exit=False)
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))

    def records(self) -> list[Any]:
        otel_audit.force_flush()  # the ORM integrations' events are emitted on a worker thread
        return [item.log_record for item in self.exporter.get_finished_logs()]

    def attrs(self) -> list[dict[str, Any]]:
        return [dict(r.attributes or {}) for r in self.records()]

    def one(self) -> Any:
        records = self.records()
        assert len(records) == 1, [r.event_name for r in records]
        return records[0]

    def clear(self) -> None:
        otel_audit.force_flush()
        self.exporter.clear()


@pytest.fixture(name="captured")
def captured_fixture() -> Iterator[Captured]:
    """``otel_audit`` configured to emit through a fresh in-memory provider (import it by this name)."""
    cap = Captured()
    otel_audit.configure(logger_provider=cap.provider)
    try:
        yield cap
    finally:
        otel_audit.shutdown()
        cap.provider.shutdown()


def call(
    app: Any,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    client: tuple[str, int] = ("203.0.113.9", 40000),
    json: Any = None,
    raise_app_exceptions: bool = True,
) -> httpx.Response:
    """One request against an ASGI app, in-process."""

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.request(method, path, headers=dict(headers or {}), json=json)

    return asyncio.run(run())


#: an app's start: an exporter that prints each exported event's resource id, otel_audit configured
_EXIT_PRELUDE = """
import sys
from collections.abc import Sequence
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
import otel_audit

class Out(LogRecordExporter):
    def export(self, batch: Sequence) -> LogRecordExportResult:
        for r in batch:
            print("EXPORTED", r.log_record.attributes["audit.resource.id"], flush=True)
        return LogRecordExportResult.SUCCESS
    def shutdown(self) -> None:
        pass
    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

otel_audit.configure(exporter=Out(), service_name="exit")
"""


def exported_at_exit(tmp_path: Path, body: str) -> list[int]:
    """Run an app (``body`` after a configured ``otel_audit`` that prints what it exports) in a
    fresh interpreter that exits with ``sys.exit(0)``, no flush nor shutdown; the resource ids
    exported, as ints, in export order."""
    path = tmp_path / "app.py"
    path.write_text(_EXIT_PRELUDE + textwrap.dedent(body) + "\nsys.exit(0)\n")
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("EXPORTED")]
