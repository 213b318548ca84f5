"""Alert destinations: a signed JSON webhook (SPEC section 10), a Slack-compatible incoming webhook,
and an OTLP/HTTP log record for a Collector to route anywhere. One POST per delivery attempt; any
2xx is accepted, anything else (or no answer) is retried by the deliverer."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from receiver.alerts.config import Destination
from receiver.alerts.model import Alert, fired_request

SIGNATURE_HEADER = "X-Otel-Audit-Signature"


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the body>``, as GitHub signs its webhooks."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _slack_text(alert: Alert) -> str:
    group = ", ".join(f"{k}={v}" for k, v in alert.group.items()) or "all"
    return (
        f":rotating_light: [{alert.severity}] {alert.rule} in tenant {alert.tenant} ({group}): "
        f"{alert.count} event(s) {alert.body()['window_start']} .. {alert.body()['window_end']}"
        + (f" — {alert.summary}" if alert.summary else "")
    )


def request_for(destination: Destination, alert: Alert) -> tuple[bytes, dict[str, str]]:
    """The body and headers one delivery of ``alert`` to ``destination`` sends."""
    headers = {"user-agent": "otel-audit-alerts", **destination.headers}
    if destination.kind == "otlp":
        headers["content-type"] = "application/x-protobuf"
        return fired_request([alert]).SerializeToString(), headers
    payload = {"text": _slack_text(alert)} if destination.kind == "slack" else alert.body()
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers["content-type"] = "application/json"
    if destination.kind == "webhook" and destination.secret:
        headers[SIGNATURE_HEADER] = signature(destination.secret, body)
    return body, headers


def deliver(client: httpx.Client, destination: Destination, alert: Alert) -> str | None:
    """One attempt; None when accepted, else why not (for the log and the status page)."""
    body, headers = request_for(destination, alert)
    try:
        answer = client.post(
            destination.url, content=body, headers=headers, timeout=destination.timeout_seconds
        )
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
    if 200 <= answer.status_code < 300:
        return None
    return f"HTTP {answer.status_code}: {answer.text[:200]}"
