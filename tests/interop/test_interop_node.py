"""Interop: the OpenTelemetry JS SDK (``@opentelemetry/sdk-logs``) and its three OTLP log exporters
(gRPC with gzip, HTTP/JSON, HTTP/protobuf with gzip) send audit records to the receiver with an
ingest token; every record is stored with its columns. Needs Node and ``npm ci`` in tests/interop
(``make test`` runs it when npm is on the PATH)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from delivery_support import start_receiver

from receiver.filters import EventFilter

HERE = Path(__file__).resolve().parent
TOKEN = "node-interop-token-0123456789"

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(
        not (HERE / "node_modules" / "@opentelemetry" / "sdk-logs").is_dir(),
        reason="tests/interop/node_modules is absent: run `npm ci` in tests/interop (make test does)",
    ),
]


@pytest.mark.parametrize("protocol", ["grpc", "http-json", "http-proto"])
def test_node_sdk_exporters_deliver_audit_records(store, protocol):
    receiver = start_receiver(store, ingest_tokens=[{"token": TOKEN, "tenant": "acme"}])
    try:
        port = receiver.grpc_port if protocol == "grpc" else receiver.http_port
        proc = subprocess.run(
            ["node", "send.mjs", protocol, f"http://127.0.0.1:{port}", "25", TOKEN],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        ids = json.loads(proc.stdout.strip().splitlines()[-1])["ids"]
        rows = {row["id"]: row for row in store.search(EventFilter(), 100)}
        assert sorted(rows) == sorted(ids)
        row = rows[ids[3]]
        assert (row["tenant_id"], row["user_id"], row["action"], row["resource_id"]) == (
            "acme",
            "node-user",
            "update",
            "doc-3",
        )
        assert row["event_name"] == "audit.document.update" and row["reason"] == "node edit 3"
        assert row["changes"] == {"title": {"old": "a", "new": "b3"}}
        assert row["service_name"] == f"node-{protocol}" and row["http_status"] == 200
        assert row["attributes"] == {"retries": "3"}
    finally:
        receiver.stop_listeners()


def test_node_sdk_with_a_wrong_token_stores_nothing(store):
    receiver = start_receiver(store, ingest_tokens=[{"token": TOKEN, "tenant": "acme"}])
    try:
        proc = subprocess.run(
            [
                "node",
                "send.mjs",
                "http-proto",
                f"http://127.0.0.1:{receiver.http_port}",
                "3",
                "wrong-token-0000000",
            ],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert store.count(EventFilter()) == 0
    finally:
        receiver.stop_listeners()
