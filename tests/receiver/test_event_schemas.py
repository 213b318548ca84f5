"""Event schemas (SPEC section 12): a real receiver rejects or flags records that violate them,
counts them per schema, and an application checks its events against the same file."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from conftest import start_receiver
from otlp_builders import audit_attrs, export, log_record, request

from otel_audit.event_schemas import VIOLATION_ATTRIBUTE, load_schema_file
from otel_audit.testing import assert_valid
from receiver.config import ConfigError, load_config
from receiver.filters import EventFilter

ADMIN = "s" * 32

SCHEMAS = """
schemas:
  - event_name: audit.payment.update
    version: 2
    on_violation: reject
    schema:
      type: object
      required: [audit.resource.id, audit.changes]
      properties:
        audit.resource.id: {type: string, pattern: "^pay_"}
        audit.changes:
          type: object
          properties:
            amount:
              type: object
              properties: {new: {type: number, minimum: 0}}
  - event_name: audit.document.read
    on_violation: flag
    schema:
      type: object
      required: [ticket]
"""


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit-schemas.yaml"
    path.write_text(SCHEMAS)
    return path


def payment(resource_id: str, amount: float) -> object:
    changes = json.dumps({"amount": {"old": 1, "new": amount}})
    return log_record(
        audit_attrs(
            audit__action="update",
            audit__resource__type="payment",
            audit__resource__id=resource_id,
            audit__changes=changes,
        ),
        event_name="audit.payment.update",
    )


def test_reject_flag_and_counts_through_a_real_receiver(store, schema_file):
    receiver = start_receiver(
        store, schemas=str(schema_file), admin_tokens=[{"token": ADMIN, "role": "admin", "tenants": ["acme"]}]
    )
    try:
        answer = export(
            f"127.0.0.1:{receiver.grpc_port}",
            request(
                [
                    payment("pay_1", 10.5),  # valid
                    payment("pay_2", -3),  # rejected: changes/amount/new below minimum
                    payment("inv_3", 1),  # rejected: resource id pattern
                    log_record(audit_attrs(ticket="T-1")),  # document read with its ticket: valid
                    log_record(audit_attrs()),  # document read without ticket: flagged, stored
                    log_record(audit_attrs(audit__action="create"), event_name="audit.document.create"),
                ]
            ),
        )
        assert answer.partial_success.rejected_log_records == 2
        message = answer.partial_success.error_message
        assert (
            "record 1: schema audit.payment.update v2: audit.changes/amount/new: -3 is less than the minimum of 0"
            in message
        )
        assert (
            "record 2: schema audit.payment.update v2: audit.resource.id: 'inv_3' does not match" in message
        )
        rows = store.search(EventFilter(), 100)
        assert sorted((r["event_name"], r["resource_id"]) for r in rows) == [
            ("audit.document.create", "doc-1"),
            ("audit.document.read", "doc-1"),
            ("audit.document.read", "doc-1"),
            ("audit.payment.update", "pay_1"),
        ]
        flagged = [r for r in rows if VIOLATION_ATTRIBUTE in r["attributes"]]
        assert len(flagged) == 1
        assert (
            flagged[0]["attributes"][VIOLATION_ATTRIBUTE]
            == "schema audit.document.read v1: $: 'ticket' is a required property"
        )
        assert all(
            VIOLATION_ATTRIBUTE not in r["attributes"]
            for r in rows
            if r["event_name"] != "audit.document.read"
        )

        base = f"http://127.0.0.1:{receiver.admin_port}"
        metrics = httpx.get(f"{base}/metrics", timeout=30).text
        for line in (
            'otel_audit_schema_events_total{event_name="audit.payment.update",result="valid",version="2"} 1.0',
            'otel_audit_schema_events_total{event_name="audit.payment.update",result="rejected",version="2"} 2.0',
            'otel_audit_schema_events_total{event_name="audit.payment.update",result="flagged",version="2"} 0.0',
            'otel_audit_schema_events_total{event_name="audit.document.read",result="flagged",version="1"} 1.0',
            'otel_audit_schema_events_total{event_name="audit.document.read",result="valid",version="1"} 1.0',
            'otel_audit_rejected_events_total{reason="schema"} 2.0',
        ):
            assert line in metrics, line
        report = httpx.get(
            f"{base}/api/compliance",
            params={"tenant": "acme"},
            headers={"authorization": f"Bearer {ADMIN}"},
            timeout=30,
        ).json()
        assert report["schemas"] == [
            {"event_name": "audit.document.read", "version": "1", "valid": 1, "flagged": 1, "rejected": 0},
            {"event_name": "audit.payment.update", "version": "2", "valid": 1, "flagged": 0, "rejected": 2},
        ]
    finally:
        receiver.stop_listeners()


def test_no_schema_configured_changes_nothing(receiver, store):
    answer = export(f"127.0.0.1:{receiver.grpc_port}", request([payment("inv_1", -1)]))
    assert not answer.HasField("partial_success")
    assert len(store.search(EventFilter(), 10)) == 1


def test_config_rejects_a_broken_schema(tmp_path: Path):
    with pytest.raises(ConfigError, match="not a valid JSON Schema"):
        load_config(None, schemas=[{"event_name": "audit.a.b", "schema": {"type": "nope"}}])
    with pytest.raises(ConfigError, match="on_violation"):
        load_config(None, schemas=[{"event_name": "audit.a.b", "schema": {}, "on_violation": "drop"}])
    with pytest.raises(ConfigError, match="cannot read schemas file"):
        load_config(None, schemas=str(tmp_path / "missing.yaml"))


def test_assert_valid_reads_the_same_file(schema_file, captured_sdk):
    import otel_audit

    otel_audit.record(action="update", resource_type="payment", resource_id="pay_9", changes={"amount": 5})
    otel_audit.record(action="read", resource_type="document", resource_id="d", ticket="T-2")
    otel_audit.record(action="export", resource_type="report", resource_id="r")  # no schema
    otel_audit.force_flush()  # the events reach the SDK on the deferred worker
    assert assert_valid(captured_sdk.get_finished_logs(), schema_file) == 2
    with pytest.raises(AssertionError, match="no schema"):
        assert_valid(captured_sdk.get_finished_logs(), schema_file, require_schema=True)
    captured_sdk.clear()
    otel_audit.record(action="update", resource_type="payment", resource_id="pay_9", changes={"amount": -5})
    otel_audit.force_flush()
    with pytest.raises(AssertionError, match=r"schema audit.payment.update v2: audit.changes/amount/new: -5"):
        assert_valid(captured_sdk.get_finished_logs(), load_schema_file(schema_file))
    # attribute mappings work too
    assert assert_valid([{"event.name": "audit.document.read", "ticket": "x"}], schema_file) == 1


@pytest.fixture
def captured_sdk():
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    import otel_audit

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    otel_audit.configure(logger_provider=provider)
    yield exporter
    otel_audit.shutdown()
    provider.shutdown()


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_compliance_page_shows_the_counts_per_schema(store, schema_file):
    from playwright.sync_api import sync_playwright

    receiver = start_receiver(
        store, schemas=str(schema_file), admin_tokens=[{"token": ADMIN, "role": "admin", "tenants": ["acme"]}]
    )
    try:
        export(
            f"127.0.0.1:{receiver.grpc_port}",
            request([payment("pay_1", 1), payment("pay_2", -1), log_record(audit_attrs())]),
        )
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"http://127.0.0.1:{receiver.admin_port}/compliance?tenant=acme")
            page.fill("#signin-token", ADMIN)
            page.click("#signin-form button[type=submit]")
            page.wait_for_selector("#schemas-card:not([hidden])")
            rows = [
                [cell.inner_text() for cell in row.query_selector_all("th, td")]
                for row in page.query_selector_all("#schema-counts tbody tr")
            ]
            browser.close()
        assert rows == [
            ["audit.document.read", "1", "0", "1", "0"],
            ["audit.payment.update", "2", "1", "0", "1"],
        ]
        assert errors == []
    finally:
        receiver.stop_listeners()
