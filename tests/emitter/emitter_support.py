"""Helpers shared by the emitter tests: a real SDK LoggerProvider exporting to memory, ASGI calls."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
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
