"""Answers of the SQL endpoint sent as the engine makes them (issue 13 item 5: buffering
whole answers took the receiver from 527 MiB to 3.2 GiB with four 1 M-row queries).

Formats whose engine chunks concatenate into one valid answer (measured on chDB: one chunk
per block) are streamed: memory per running query is one block. The rest (``JSON``,
``Parquet``, ``Arrow``, ``*WithNames``, ``Values``, ``Pretty`` ...: each chunk would be a
document of its own) are collected, bounded by the session's ``max_result_bytes``.
An engine error after the first chunk (a limit hit mid-answer) is written into the body as
ClickHouse does (``Code: N. DB::Exception: ...``) and the response is then aborted, so no
client can take a cut answer for a complete one.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request

from receiver.store.restricted import EngineError, Stream

log = logging.getLogger("otel_audit.sql_endpoint")

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


class AnswerAborted(Exception):
    """The engine failed after the answer started: the connection is dropped on purpose."""


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
                tail = ("\n" + error_text(exc) + "\n").encode()
                yield packer.compress(tail) + packer.flush(zlib.Z_SYNC_FLUSH) if packer else tail
                log.warning("SQL endpoint: query failed mid-answer: Code %s", exc.code)
                raise AnswerAborted(f"Code {exc.code} after the answer started") from exc
        if packer:
            yield packer.flush()
    finally:
        finish()
