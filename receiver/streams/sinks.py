"""Stream destinations: one ``send(batch)`` per kind that returns once the destination accepted
the whole batch and raises :class:`DeliveryError` otherwise. HTTP kinds accept on any 2xx; syslog
once the bytes are written to the TCP (or TLS) connection; s3 once both objects are stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import ssl
from pathlib import Path
from typing import Any, Protocol

import httpx

from receiver.alerts.destinations import SIGNATURE_HEADER, signature
from receiver.formats import parquet_chunks
from receiver.model import API_COLUMNS
from receiver.streams.batch import Batch, DeliveryError
from receiver.streams.config import Stream
from receiver.streams.encode import otlp_request, syslog_frame

UTC = dt.timezone.utc


class Sink(Protocol):
    def send(self, batch: Batch) -> None: ...
    def close(self) -> None: ...


class _Http:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.client = httpx.Client(follow_redirects=False, timeout=stream.timeout_seconds)

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        try:
            answer = self.client.post(url, content=body, headers={**headers, **self.stream.headers})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        if not 200 <= answer.status_code < 300:
            raise DeliveryError(f"HTTP {answer.status_code}: {answer.text[:200]}")
        return answer

    def close(self) -> None:
        self.client.close()


class Webhook(_Http):
    """Gzip NDJSON; the signature is the HMAC of the body as sent (compressed), as alerts sign theirs."""

    def send(self, batch: Batch) -> None:
        body = batch.gzipped()
        headers = {
            "content-type": "application/x-ndjson",
            "content-encoding": "gzip",
            "user-agent": "otel-audit-streams",
            "x-otel-audit-stream": batch.stream,
            "x-otel-audit-batch": batch.id,
        }
        if self.stream.secret:
            headers[SIGNATURE_HEADER] = signature(self.stream.secret, body)
        self._post(self.stream.url, body, headers)


class SplunkHec(_Http):
    """Splunk's HEC event endpoint: concatenated JSON envelopes, one per event."""

    def send(self, batch: Batch) -> None:
        parts = []
        for event in batch.events:
            envelope: dict[str, Any] = {
                "time": dt.datetime.fromisoformat(event["created_at"].replace("Z", "+00:00")).timestamp(),
                "source": "otel-audit",
                "sourcetype": self.stream.sourcetype,
                "event": event,
            }
            if self.stream.index:
                envelope["index"] = self.stream.index
            parts.append(json.dumps(envelope, separators=(",", ":"), sort_keys=True))
        headers = {"authorization": f"Splunk {self.stream.token}", "content-type": "application/json"}
        answer = self._post(self.stream.url, "\n".join(parts).encode(), headers)
        try:
            code = answer.json().get("code", 0)
        except ValueError:
            code = 0
        if code != 0:
            raise DeliveryError(f"HEC code {code}: {answer.text[:200]}")


class OtlpHttp(_Http):
    def send(self, batch: Batch) -> None:
        body = otlp_request(batch).SerializeToString()
        url = self.stream.endpoint.rstrip("/") + "/v1/logs"
        self._post(url, body, {"content-type": "application/x-protobuf"})


class OtlpGrpc:
    """OTLP/gRPC ``LogsService/Export``; a partial success that rejected records is not accepted."""

    def __init__(self, stream: Stream) -> None:
        import grpc
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub

        self.stream = stream
        target = stream.endpoint.split("://", 1)[1].rstrip("/")
        if stream.endpoint.startswith("https://"):
            ca = Path(stream.tls_ca_file).read_bytes() if stream.tls_ca_file else None
            self.channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=ca))
        else:
            self.channel = grpc.insecure_channel(target)
        self.stub = LogsServiceStub(self.channel)
        metadata = tuple((k.lower(), v) for k, v in stream.headers.items())
        self.metadata = metadata or None

    def send(self, batch: Batch) -> None:
        import grpc

        try:
            answer = self.stub.Export(
                otlp_request(batch), timeout=self.stream.timeout_seconds, metadata=self.metadata
            )
        except grpc.RpcError as exc:
            raise DeliveryError(f"gRPC {exc.code().name}: {exc.details()}"[:300]) from exc
        if answer.partial_success.rejected_log_records:
            raise DeliveryError(
                f"{answer.partial_success.rejected_log_records} record(s) rejected: "
                f"{answer.partial_success.error_message}"[:300]
            )

    def close(self) -> None:
        self.channel.close()


class Syslog:
    """One TCP (or TLS) connection, reopened after any error; octet-counted framing (RFC 6587)."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(
            (self.stream.host, self.stream.port), timeout=self.stream.timeout_seconds
        )
        if self.stream.tls:
            context = ssl.create_default_context(cafile=self.stream.tls_ca_file or None)
            sock = context.wrap_socket(sock, server_hostname=self.stream.host)
        return sock

    def send(self, batch: Batch) -> None:
        hostname = socket.gethostname()
        data = b"".join(
            syslog_frame(e, self.stream.facility, hostname, self.stream.format == "cef") for e in batch.events
        )
        try:
            if self.sock is None:
                self.sock = self._connect()
            self.sock.sendall(data)
        except OSError as exc:
            self.close()
            raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from exc

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None


class S3:
    """``<prefix>YYYY/MM/DD/HH/<batch id>.ndjson.gz`` (or ``.parquet`` with ``format: parquet``;
    the hour the batch was written) and ``<prefix>manifests/YYYY/MM/DD/HH/<batch id>.json``: the
    object's key, format, size, SHA-256, event count and each log's index range. A redelivered
    batch overwrites the same keys."""

    def __init__(self, stream: Stream) -> None:
        import boto3
        from botocore.config import Config

        self.stream = stream
        kwargs: dict[str, Any] = {"region_name": stream.region}
        if stream.endpoint_url:
            kwargs["endpoint_url"] = stream.endpoint_url
        if stream.access_key_id:
            kwargs["aws_access_key_id"] = stream.access_key_id
            kwargs["aws_secret_access_key"] = stream.secret_access_key
        cfg = Config(
            connect_timeout=stream.timeout_seconds,
            read_timeout=stream.timeout_seconds,
            retries={"max_attempts": 1},
        )
        self.client = boto3.client("s3", config=cfg, **kwargs)
        #: Parquet objects are written from the stored columns, not from the JSON lines
        self.wants_columns = stream.format == "parquet"

    def _object(self, batch: Batch) -> tuple[bytes, str, str]:
        """The object's body, file suffix and content type."""
        if self.wants_columns:
            table = batch.table.select(list(API_COLUMNS))
            return b"".join(parquet_chunks(table.to_batches())), "parquet", "application/vnd.apache.parquet"
        body = batch.gzipped()
        return body, "ndjson.gz", "application/x-ndjson"

    def send(self, batch: Batch) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        now = dt.datetime.now(UTC)
        part = now.strftime("%Y/%m/%d/%H")
        body, suffix, content_type = self._object(batch)
        key = f"{self.stream.prefix}{part}/{batch.id}.{suffix}"
        manifest = {
            "stream": batch.stream,
            "batch": batch.id,
            "object": key,
            "format": suffix,
            "bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "events": len(batch),
            "ranges": {log: list(r) for log, r in sorted(batch.ranges.items())},
            "written_at": now.isoformat().replace("+00:00", "Z"),
        }
        try:
            extra = {} if self.wants_columns else {"ContentEncoding": "gzip"}
            self.client.put_object(
                Bucket=self.stream.bucket, Key=key, Body=body, ContentType=content_type, **extra
            )
            self.client.put_object(
                Bucket=self.stream.bucket,
                Key=f"{self.stream.prefix}manifests/{part}/{batch.id}.json",
                Body=json.dumps(manifest, sort_keys=True).encode(),
                ContentType="application/json",
            )
        except (BotoCoreError, ClientError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from exc

    def close(self) -> None:
        self.client.close()


def build_sink(stream: Stream) -> Sink:
    kinds: dict[str, type] = {
        "webhook": Webhook,
        "splunk_hec": SplunkHec,
        "otlp_http": OtlpHttp,
        "otlp_grpc": OtlpGrpc,
        "syslog": Syslog,
        "s3": S3,
    }
    sink: Sink = kinds[stream.kind](stream)
    return sink
