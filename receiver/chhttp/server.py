"""A read-only, ClickHouse-HTTP-compatible query endpoint over the embedded store.

Enough of ClickHouse's HTTP interface for clickhouse-connect and for Grafana's ClickHouse
plugin (clickhouse-go, protocol ``http``): ``GET /ping``; ``GET|POST /`` with the query in
``query=`` and/or the body (plain or ``multipart/form-data`` fields); ``param_<name>`` values; ``default_format``; gzip/deflate answers
when asked (``enable_http_compression=1``); the ``X-ClickHouse-*`` answer headers; errors as
non-200 with ``X-ClickHouse-Exception-Code`` and a ``Code: N. DB::Exception: ...`` body.

Every request: authenticate (basic auth, ``X-ClickHouse-User``/``-Key`` or ``user``/``password``)
→ the user's locked session → ClickHouse formats it (one statement) → ``EXPLAIN AST`` →
``guard.check`` → run. Settings in the URL are refused unless equal to the session's own
(``max_execution_time``, which clickhouse-go sends with every query, is accepted and not
applied: the session's limit stays). One user's queries run concurrently on a small pool of
identical sessions.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hmac
import json
import logging
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from receiver.admin.trail import AccessTrail
from receiver.chhttp import answer, guard, native, trail
from receiver.chhttp.errors import ClickHouseHttpError, error_of, error_response
from receiver.chhttp.pool import TOO_MANY_QUERIES, SqlUserSession, TooManyQueries
from receiver.store.restricted import EngineError, RestrictedSession, Stream

log = logging.getLogger("otel_audit.sql_endpoint")

#: URL parameters that steer the transport, never passed to the engine as settings
TRANSPORT_PARAMS = frozenset(
    {
        "query",
        "user",
        "password",
        "database",
        "default_format",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "quota_key",
        "client_protocol_version",
        "wait_end_of_query",
        "enable_http_compression",
        "http_zlib_compression_level",
        "buffer_size",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "cancel_http_readonly_queries_on_client_close",
        "role",
    }
)
#: settings clients send on every query that this endpoint accepts and does not apply: the
#: session's own limit stays in force. clickhouse-go (so Grafana's plugin) sends its query
#: timeout + 5 s as max_execution_time; the plugin's docs ask for it to be
#: CHANGEABLE_IN_READONLY on a ClickHouse server.
CLIENT_TIMEOUTS = frozenset({"max_execution_time"})
_CONTENT_TYPES = {
    "JSON": "application/json; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "CSVWithNames": "text/csv; charset=UTF-8; header=present",
}
_MAX_QUERY_BYTES = 256 * 1024
#: a query id travels back in a header: printable ASCII only
_MAX_QUERY_ID = 256


@dataclass(slots=True)
class Answer:
    """An accepted query's answer: ``body`` (collected), or ``first`` chunk + ``stream``."""

    fmt: str
    tables: set[str]
    summary: dict[str, Any]
    body: bytes = b""
    stream: Stream | None = None
    first: bytes = b""


class SqlEndpoint:
    def __init__(
        self, users: list[SqlUserSession], version: str = "", access_trail: AccessTrail | None = None
    ) -> None:
        self._users = users
        self.version = version
        self.trail = access_trail

    # -- authentication ----------------------------------------------------------------
    def authenticate(self, request: Request) -> SqlUserSession:
        user = request.headers.get("x-clickhouse-user") or request.query_params.get("user")
        password = request.headers.get("x-clickhouse-key") or request.query_params.get("password") or ""
        auth = request.headers.get("authorization", "")
        if user is None and auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            user, _, password = decoded.partition(":")
        found = None
        for known in self._users:
            same_user = hmac.compare_digest(known.user.encode(), (user or "").encode())
            if same_user & hmac.compare_digest(known.password.encode(), password.encode()):
                found = known
        if found is None:
            raise ClickHouseHttpError(
                516,
                f"{user or 'default'}: Authentication failed: password is incorrect, or there is no user with such name",
            )
        return found

    # -- request → statement ---------------------------------------------------------------
    @staticmethod
    async def form_fields(request: Request) -> dict[str, str] | None:
        """A ``multipart/form-data`` request's fields (ClickHouse reads ``query`` and
        ``param_<name>`` from them; clickhouse-connect sends its values that way once they pass
        4 KiB); None for any other body. External-data files are refused."""
        if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            return None
        try:
            form = await request.form(max_files=0, max_fields=10_000, max_part_size=_MAX_QUERY_BYTES)
        except HTTPException as exc:  # the form parser's refusals: too many files/fields, too large
            raise ClickHouseHttpError(1000, f"form data refused: {exc.detail}") from exc
        fields: dict[str, str] = {}
        for name, value in form.multi_items():
            if not isinstance(value, str):
                raise ClickHouseHttpError(1000, "external data (form files) is not supported here")
            fields[name] = value
        return fields

    async def query_text(self, request: Request, form: dict[str, str] | None = None) -> str:
        text = request.query_params.get("query", "")
        if form is not None:
            body_text = form.get("query", "")
            text = f"{text}\n{body_text}" if text and body_text else (text or body_text)
        elif request.method == "POST":
            body = await request.body()
            encoding = request.headers.get("content-encoding", "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding not in ("", "identity"):
                raise ClickHouseHttpError(1000, f"Content-Encoding {encoding} is not supported here")
            if body:
                text = f"{text}\n{body.decode('utf-8')}" if text else body.decode("utf-8")
        if len(text.encode()) > _MAX_QUERY_BYTES:
            raise ClickHouseHttpError(62, f"Max query size exceeded ({_MAX_QUERY_BYTES} bytes)")
        if not text.strip():
            raise ClickHouseHttpError(62, "Empty query")
        return text

    @staticmethod
    def split_params(
        request: Request, session: RestrictedSession, form: dict[str, str] | None = None
    ) -> tuple[dict[str, str], str]:
        """``param_<name>`` values (URL or form), and the default format; refuse settings that
        would change."""
        params: dict[str, str] = {}
        for name, value in (form or {}).items():
            if name.startswith("param_"):
                params[name[len("param_") :]] = value
        for name, value in request.query_params.multi_items():
            if name.startswith("param_"):
                params[name[len("param_") :]] = value
            elif name in ("compress", "decompress"):
                if value not in ("", "0"):
                    raise ClickHouseHttpError(
                        1000,
                        f"{name}=1 (ClickHouse block compression) is not supported here: use HTTP compression",
                    )
            elif name == "database":
                if value not in ("", session.database, "default"):
                    raise ClickHouseHttpError(81, f"Database {value} does not exist")
            elif name in TRANSPORT_PARAMS or name in CLIENT_TIMEOUTS:
                continue
            elif name not in session.settings:
                raise ClickHouseHttpError(115, f"Unknown setting '{name}'")
            elif session.settings[name] != value:
                raise ClickHouseHttpError(164, f"Cannot modify '{name}' setting in readonly mode")
        fmt = request.query_params.get("default_format") or "TabSeparated"
        if fmt not in guard.FORMATS:
            raise ClickHouseHttpError(73, f"Unknown format {fmt}")
        return params, fmt

    # -- routes ---------------------------------------------------------------------------
    async def ping(self, request: Request) -> Response:
        return PlainTextResponse("Ok.\n")

    async def query(self, request: Request) -> Response:
        query_id = request.query_params.get("query_id") or str(uuid.uuid4())
        user: SqlUserSession | None = None
        text = ""
        try:
            _check_query_id(query_id)
            user = self.authenticate(request)
            form = await self.form_fields(request)
            text = await self.query_text(request, form)
            params, default_format = self.split_params(request, user.session, form)
            revision = request.query_params.get("client_protocol_version", "0")
            client_revision = int(revision) if revision.isdigit() else 0
            try:
                session = await user.acquire()
            except TooManyQueries as exc:
                raise ClickHouseHttpError(TOO_MANY_QUERIES, str(exc)) from exc
            result = await user.run(
                session, self._execute, session, text, params, default_format, client_revision
            )
            if result.stream is None:
                user.release(session)
        except Exception as exc:  # noqa: BLE001 - every failure is a ClickHouse-style error
            code, message, status = error_of(exc, user.session.path if user is not None else "")
            response = error_response(code, message, self.version, status)
            if user is not None and code != 516:
                outcome = "denied" if code in (guard.READONLY, guard.ACCESS_DENIED) else "failure"
                if not await self._record(request, user, text, outcome, response.status_code, query_id):
                    return error_response(1001, "the access could not be written to the audit trail")
            return response
        return await self._answer(request, user, session, result, text, query_id)

    async def _answer(
        self,
        request: Request,
        user: SqlUserSession,
        session: RestrictedSession,
        result: Answer,
        text: str,
        query_id: str,
    ) -> Response:
        stream = result.stream

        def finish() -> None:
            if stream is not None:
                user.finish_later(stream.close, session)

        try:
            recorded = not _reads_audit_data(result.tables, session) or await self._record(
                request, user, text, "success", 200, query_id
            )
        except BaseException:  # the client went away while the trail was written
            finish()
            raise
        if not recorded:
            finish()
            return error_response(1001, "the access could not be written to the audit trail", self.version)
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Format": result.fmt,
            "X-ClickHouse-Timezone": session.timezone,
            "X-ClickHouse-Server-Display-Name": "otel-audit",
            "X-ClickHouse-Summary": json.dumps(result.summary, separators=(",", ":")),
        }
        encoding = answer.encoding_for(request)
        if encoding:
            headers["Content-Encoding"] = encoding
        media = _CONTENT_TYPES.get(
            result.fmt,
            "text/tab-separated-values; charset=UTF-8"
            if result.fmt.startswith(("TabSep", "TSV"))
            else "application/octet-stream",
        )
        if stream is None:
            return Response(answer.compress(result.body, encoding), media_type=media, headers=headers)

        def error_text(exc: EngineError) -> str:
            code, message, _ = error_of(exc, user.session.path if user is not None else "")
            return bytes(error_response(code, message, self.version).body).decode().strip()

        tag = answer.exception_tag()
        headers["X-ClickHouse-Exception-Tag"] = tag
        body = answer.stream_body(result.first, stream, encoding, user.call, finish, error_text, tag)
        return StreamingResponse(body, media_type=media, headers=headers)

    async def _record(
        self, request: Request, user: SqlUserSession, text: str, outcome: str, status: int, query_id: str
    ) -> bool:
        if self.trail is None or not self.trail.enabled:
            return True
        tenants = None if user.session.tenants is None else tuple(user.session.tenants)
        access = trail.SqlAccess(
            user=user.user,
            tenants=tenants,
            text=text,
            outcome=outcome,
            http_status=status,
            query_id=query_id,
            client_address=request.client.host if request.client else "",
            user_agent=request.headers.get("user-agent", ""),
            http_method=request.method,
        )
        try:
            await asyncio.to_thread(trail.record, self.trail, access)
        except Exception:  # noqa: BLE001 - fail closed: the caller refuses the query
            log.exception("SQL endpoint: cannot record the access")
            return False
        return True

    @staticmethod
    def _execute(
        session: RestrictedSession,
        text: str,
        params: dict[str, str],
        default_format: str,
        client_revision: int = 0,
    ) -> Answer:
        canonical = session.canonical(text)
        if canonical == native.HELLO:
            if default_format == "Native":
                body = native.hello_block("otel-audit", session.version, session.timezone, client_revision)
                summary = {"read_rows": "1", "read_bytes": "0", "elapsed_ns": "0"}
                return Answer("Native", set(), summary, body=body)
            canonical = "SELECT displayName(), version(), toUInt32(0) AS `revision()`, timezone()"
        ast = session.explain_ast(canonical, params)
        fmt = (
            guard.check(
                ast, session.database, session.allowed_tables, hidden_columns=session.hidden_system_columns
            )
            or default_format
        )
        tables = guard.tables_of(ast)
        if fmt not in answer.STREAMED_FORMATS:
            body, summary = session.run(canonical, fmt, params)
            return Answer(fmt, tables, summary, body=body)
        stream = session.open_stream(canonical, fmt, params)
        head: list[bytes] = []
        size = 0
        try:
            # the answer's start is held back, so a small answer's error is a plain error
            while size < answer.HEAD_BYTES:
                chunk = stream.next_chunk()
                if chunk is None:
                    break
                head.append(chunk)
                size += len(chunk)
        except BaseException:
            stream.close()
            raise
        summary = {"read_rows": str(stream.rows_read), "read_bytes": str(stream.bytes_read)}
        if size < answer.HEAD_BYTES:  # the whole answer
            stream.close()
            return Answer(fmt, tables, summary, body=b"".join(head))
        return Answer(fmt, tables, summary, stream=stream, first=b"".join(head))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/ping", self.ping, methods=["GET", "HEAD"]),
                Route("/", self.query, methods=["GET", "POST"]),
            ]
        )


def _check_query_id(query_id: str) -> None:
    if len(query_id) > _MAX_QUERY_ID or not all(" " <= ch <= "~" for ch in query_id):
        raise ClickHouseHttpError(
            36,
            f"query_id must be at most {_MAX_QUERY_ID} printable ASCII characters (no CR, LF or non-ASCII)",
        )


def _reads_audit_data(tables: set[str], session: RestrictedSession) -> bool:
    for name in tables:
        db, _, table = name.rpartition(".")
        if db in ("", session.database) and table in session.allowed_tables:
            return True
    return False
