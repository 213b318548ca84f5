"""Answers of the SQL endpoint sent as the engine makes them (issue 13 item 5: buffering
whole answers took the receiver from 527 MiB to 3.2 GiB with four 1 M-row queries).

Formats whose engine chunks concatenate into one valid answer (measured on chDB: one chunk
per block) are streamed: memory per running query is one block. The rest (``JSON``,
``Parquet``, ``Arrow``, ``*WithNames``, ``Values``, ``Pretty`` ...: each chunk would be a
document of its own) are collected, bounded by the session's ``max_result_bytes``.
An engine error after the first chunk (a limit hit mid-answer) is written into the body as
ClickHouse 25.11+ does: the answer carries an ``X-ClickHouse-Exception-Tag`` header and the
error comes as ``__exception__\r\n<tag>\r\n<message>\n<length> <tag>\r\n__exception__\r\n``
(clickhouse-connect raises it), and the answer ends there, as ClickHouse's does: a client
that does not know the tag still finds an answer that does not parse, never a short one.
"""

from __future__ import annotations

import gzip
import logging
import secrets
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request

from receiver.store.restricted import EngineError, Stream

log = logging.getLogger("otel_audit.sql_endpoint")

#: an answer's first bytes are collected before the response starts (ClickHouse's
#: ``http_response_buffer_size``): an error within them is a plain HTTP error, and an error
#: after them arrives in a chunk of its own
HEAD_BYTES = 1 << 20

STREAMED_FORMATS = frozenset(
    {
        "Native",
        "RowBinary",
        "TabSeparated",
        "TSV",
        "TSVRaw",
        "CSV",
        "JSONEachRow",
        "JSONCompactEachRow",
        "JSONStringsEachRow",
    }
)


def exception_tag() -> str:
    return secrets.token_hex(8)


def exception_block(tag: str, message: str) -> bytes:
    text = message.strip().encode()
    return (
        b"__exception__\r\n"
        + tag.encode()
        + b"\r\n"
        + text
        + b"\n"
        + f"{len(text)} {tag}".encode()
        + b"\r\n__exception__\r\n"
    )


def encoding_for(request: Request) -> str | None:
    if request.query_params.get("enable_http_compression") != "1":
        return None
    accepted = {
        part.split(";")[0].strip().lower() for part in request.headers.get("accept-encoding", "").split(",")
    }
    if "gzip" in accepted:
        return "gzip"
    if "deflate" in accepted:
        return "deflate"
    return None


def compress(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=3)
    if encoding == "deflate":
        return zlib.compress(body, 3)
    return body


def _compressor(encoding: str | None) -> zlib._Compress | None:
    if encoding == "gzip":
        return zlib.compressobj(3, zlib.DEFLATED, 31)
    if encoding == "deflate":
        return zlib.compressobj(3)
    return None


async def stream_body(
    first: bytes,
    stream: Stream,
    encoding: str | None,
    call: Callable[..., Awaitable[bytes | None]],
    finish: Callable[[], None],
    error_text: Callable[[EngineError], str],
    tag: str,
) -> AsyncIterator[bytes]:
    """The answer's chunks (``first`` already fetched), compressed when asked; ``call`` runs
    the blocking fetch on the user's own threads; ``finish`` (not awaited: it must also run
    when the client went away and this task is cancelled) closes the stream and gives the
    session back."""
    packer = _compressor(encoding)
    try:
        chunk: bytes | None = first
        while chunk is not None:
            out = packer.compress(chunk) if packer else chunk
            if out:
                yield out
            try:
                chunk = await call(stream.next_chunk)
            except EngineError as exc:
                tail = exception_block(tag, error_text(exc))
                yield packer.compress(tail) + packer.flush(zlib.Z_SYNC_FLUSH) if packer else tail
                log.warning("SQL endpoint: query failed mid-answer: Code %s", exc.code)
                return
        if packer:
            yield packer.flush()
    finally:
        finish()
