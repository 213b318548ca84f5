"""ClickHouse's error answers over HTTP: the code, its name, the HTTP status, the
``Code: N. DB::Exception: ...`` text, and which engine failures are the store's own (answered as
"store unavailable" with a reference, the detail only in the log)."""

from __future__ import annotations

import logging
import uuid

from starlette.responses import PlainTextResponse, Response

from receiver.chhttp.guard import Refused
from receiver.store.restricted import EngineError

log = logging.getLogger("otel_audit.sql_endpoint")

_ERROR_NAMES = {
    36: "BAD_ARGUMENTS",
    62: "SYNTAX_ERROR",
    73: "UNKNOWN_FORMAT",
    81: "UNKNOWN_DATABASE",
    115: "UNKNOWN_SETTING",
    164: "READONLY",
    202: "TOO_MANY_SIMULTANEOUS_QUERIES",
    497: "ACCESS_DENIED",
    516: "AUTHENTICATION_FAILED",
    1000: "POCO_EXCEPTION",
    1001: "STD_EXCEPTION",
}
_STATUS = {
    36: 400,
    202: 503,
    516: 401,
    164: 403,
    497: 403,
    62: 400,
    73: 400,
    115: 400,
    456: 400,
    457: 400,
    60: 404,
    81: 404,
}
#: engine errors that mean the store itself failed (files, disk, locks): the detail names the
#: store's paths, so the client gets "store unavailable" and a reference, the log the rest
_STORE_FAULT_CODES = frozenset({74, 75, 76, 107, 236, 243, 425, 1001, 1002})
STORE_UNAVAILABLE = 1002


class ClickHouseHttpError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_response(code: int, message: str, version: str = "", status: int | None = None) -> Response:
    text = message.strip()
    if not text.startswith("Code: "):
        name = _ERROR_NAMES.get(code, "UNKNOWN_EXCEPTION")
        text = f"Code: {code}. DB::Exception: {text}. ({name})" + (f" (version {version})" if version else "")
    else:
        # chDB repeats its prefix ("Code: 164. DB::Exception: Code: 164. DB::Exception: ...")
        prefix = f"Code: {code}. DB::Exception: "
        while text.startswith(prefix + prefix):
            text = text[len(prefix) :]
    return PlainTextResponse(
        text + "\n",
        status_code=status or _STATUS.get(code, 500),
        headers={"X-ClickHouse-Exception-Code": str(code)},
    )


def error_of(exc: Exception, store_path: str = "") -> tuple[int, str, int | None]:
    """ClickHouse code, message and HTTP status (None: by the code) of a failure."""
    if isinstance(exc, ClickHouseHttpError | Refused):
        return exc.code, exc.message, None
    if isinstance(exc, EngineError):
        if exc.code in _STORE_FAULT_CODES or (store_path and store_path in exc.text):
            ref = uuid.uuid4().hex[:16]
            log.error("SQL endpoint: store unavailable (reference %s): %s", ref, exc.text)
            return STORE_UNAVAILABLE, f"store unavailable (reference {ref})", 503
        return exc.code, exc.text, None
    ref = uuid.uuid4().hex[:16]
    log.exception("SQL endpoint: unexpected error (reference %s)", ref)
    return 1001, f"internal error (reference {ref})", None
