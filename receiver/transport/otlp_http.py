"""OTLP/HTTP: ``POST /v1/logs`` with ``application/x-protobuf`` or ``application/json`` bodies.

Thin, like the gRPC transport: authenticate, read at most ``max_body_bytes`` (gzip inflated under
the same cap), decode, hand the request to the same :class:`IngestConsumer`, and answer in the
request's content type: an ``ExportLogsServiceResponse`` on 200, a ``google.rpc.Status`` on errors,
with ``Retry-After`` on 503 (opentelemetry-proto ``docs/specification.md`` "OTLP/HTTP").
"""

from __future__ import annotations

import asyncio
import math

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from receiver.ingest import IngestConsumer
from receiver.transport.errors import (
    BadRequest,
    BodyTimeout,
    ExportError,
    TooLarge,
    UnsupportedMediaType,
    status_message,
)
from receiver.transport.fairness import FairSlots
from receiver.transport.otlp_codec import decode_json, encode_response, gunzip

LOGS_PATH = "/v1/logs"
#: the Collector's OTLP/HTTP receiver caps bodies at 20 MiB too
DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024
#: requests read or processed at once; more are told to come back (bounds memory: each may hold
#: max_body_bytes twice over, compressed and inflated)
DEFAULT_MAX_IN_FLIGHT = 32
DEFAULT_BODY_TIMEOUT = 30.0
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_TYPES = frozenset({PROTOBUF, "application/protobuf"})


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _error_response(error: ExportError, as_json: bool) -> Response:
    status = status_message(error)
    if as_json:
        body = json_format.MessageToJson(status, indent=None).encode()
    else:
        body = status.SerializeToString()
    headers = {"Connection": "close"} if isinstance(error, BodyTimeout) else {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return Response(
        body, status_code=error.http_status, media_type=JSON if as_json else PROTOBUF, headers=headers
    )


class OtlpHttpHandler:
    def __init__(
        self,
        consumer: IngestConsumer,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        *,
        slots: FairSlots | None = None,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
    ) -> None:
        self._consumer = consumer
        self._max = max_body_bytes
        self._slots = slots or FairSlots(max_in_flight, max_in_flight, max_in_flight)
        self._body_timeout = body_timeout

    async def _read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max:
            raise TooLarge(f"body of {declared} bytes is larger than {self._max} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max:
                raise TooLarge(f"body is larger than {self._max} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding == "gzip":
            return gunzip(body, self._max)
        if encoding not in ("", "identity"):
            raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported (use gzip)")
        return body

    async def export(self, request: Request) -> Response:
        media = _media_type(request)
        as_json = media == JSON
        try:
            if not as_json and media not in _PROTOBUF_TYPES:
                raise UnsupportedMediaType(
                    f"Content-Type {media or '(none)'!r} is not supported: use {PROTOBUF} or {JSON}"
                )
            authorization = request.headers.get("authorization")
            self._consumer.authenticate(authorization)  # before reading or inflating anything
            client = request.client.host if request.client else None
            with self._slots.slot(authorization, client):
                try:
                    body = await asyncio.wait_for(self._read_body(request), self._body_timeout)
                except ClientDisconnect as exc:
                    raise BadRequest("client disconnected before sending the whole body") from exc
                except TimeoutError as exc:
                    raise BodyTimeout(f"body not received within {self._body_timeout:g} s") from exc
                if as_json:  # the JSON mapping stays on the per-request path
                    response = await run_in_threadpool(
                        self._consumer.consume, decode_json(body), authorization, "http"
                    )
                else:
                    response = await run_in_threadpool(
                        self._consumer.consume_protobuf, body, authorization, "http"
                    )
        except ExportError as exc:
            self._consumer.count_refused(exc)
            return _error_response(exc, as_json)
        return Response(encode_response(response, as_json), media_type=JSON if as_json else PROTOBUF)


def build_otlp_http_app(
    consumer: IngestConsumer,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    *,
    slots: FairSlots | None = None,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> Starlette:
    handler = OtlpHttpHandler(consumer, max_body_bytes, max_in_flight, slots=slots, body_timeout=body_timeout)
    return Starlette(routes=[Route(LOGS_PATH, handler.export, methods=["POST"])])
