"""OTLP wire formats shared by both transports: protobuf and the OTLP JSON mapping, gzip, size caps.

The OTLP JSON encoding is proto3 JSON with three exceptions (opentelemetry-proto
``docs/specification.md`` "JSON Protobuf Encoding"): ``traceId``/``spanId`` are hex, not base64;
enums are integers; keys are lowerCamelCase (the original field names are accepted too).
Unknown fields are ignored, as the spec requires of receivers. Anything that does not decode is a
:class:`BadRequest` (INVALID_ARGUMENT / HTTP 400): permanent, a client must not retry it.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from receiver.transport.errors import BadRequest, TooLarge

#: proto3 JSON nesting the decoder follows before refusing (deep kvlists are hostile input)
MAX_JSON_DEPTH = 100
_ID_FIELDS = {"traceId": 16, "trace_id": 16, "spanId": 8, "span_id": 8}


def decode_protobuf(body: bytes) -> ExportLogsServiceRequest:
    try:
        return ExportLogsServiceRequest.FromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise BadRequest(f"payload is not an OTLP ExportLogsServiceRequest: {exc}") from exc


def decode_json(body: bytes) -> ExportLogsServiceRequest:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadRequest(f"payload is not valid JSON: {str(exc)[:200]}") from exc
    if not isinstance(data, dict):
        raise BadRequest("payload must be a JSON object (ExportLogsServiceRequest)")
    _hex_ids_to_base64(data)
    request = ExportLogsServiceRequest()
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True, max_recursion_depth=MAX_JSON_DEPTH)
        request.SerializeToString()  # lone surrogates and the like only fail here
    except (json_format.ParseError, ValueError, TypeError, RecursionError, UnicodeError) as exc:
        raise BadRequest(f"payload is not an OTLP JSON ExportLogsServiceRequest: {str(exc)[:200]}") from exc
    return request


def _hex_ids_to_base64(data: dict[str, Any]) -> None:
    """OTLP JSON carries trace and span ids as hex; proto3 JSON (json_format) expects base64."""
    for resource_logs in _list(data, "resourceLogs", "resource_logs"):
        for scope_logs in _list(resource_logs, "scopeLogs", "scope_logs"):
            for record in _list(scope_logs, "logRecords", "log_records"):
                if not isinstance(record, dict):
                    continue
                for key, size in _ID_FIELDS.items():
                    value = record.get(key)
                    if value is None or value == "":
                        continue
                    if not isinstance(value, str):
                        raise BadRequest(f"{key} must be a hex string")
                    try:
                        raw = binascii.unhexlify(value)
                    except (binascii.Error, ValueError) as exc:
                        raise BadRequest(f"{key} {value[:40]!r} is not hex") from exc
                    if len(raw) != size:
                        raise BadRequest(f"{key} must be {size} bytes ({2 * size} hex digits)")
                    record[key] = base64.b64encode(raw).decode("ascii")


def _list(obj: Any, *keys: str) -> list[Any]:
    if not isinstance(obj, dict):
        return []
    for key in keys:
        value = obj.get(key)
        if isinstance(value, list):
            return value
    return []


def encode_response(response: ExportLogsServiceResponse, as_json: bool) -> bytes:
    if as_json:
        return json_format.MessageToJson(response, use_integers_for_enums=True, indent=None).encode()
    return response.SerializeToString()


def gunzip(body: bytes, limit: int) -> bytes:
    """Inflate a gzip body, refusing to produce more than ``limit`` bytes (gzip bombs)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"body is not valid gzip: {exc}") from exc
    if len(out) > limit:
        raise TooLarge(f"decompressed body is larger than {limit} bytes")
    if not inflater.eof:
        raise BadRequest("gzip body is truncated")
    return out
