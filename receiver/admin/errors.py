"""How the admin API answers store faults: engine parameter errors are the client's (400
with a JSON reason); an unavailable store is a 503 that names a reference id, while the
detail (it carries the store's file paths) goes to the server log only."""

from __future__ import annotations

import logging
import uuid

from starlette.responses import JSONResponse

from receiver.store.errors import error_code

log = logging.getLogger("otel_audit.admin")

#: ClickHouse codes meaning "a value the client sent is not acceptable" (bound parameters,
#: dates and numbers out of range, unparsable values)
PARAMETER_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        69,  # ARGUMENT_OUT_OF_BOUND
        72,  # CANNOT_PARSE_NUMBER
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        376,  # CANNOT_PARSE_UUID
        456,  # UNKNOWN_QUERY_PARAMETER
        457,  # BAD_QUERY_PARAMETER
    }
)


def reference() -> str:
    return uuid.uuid4().hex[:16]


def store_unavailable(exc: BaseException, what: str = "store unavailable") -> JSONResponse:
    """503 ``{"error": "store unavailable", "reference": id}``; the detail is logged with the id."""
    ref = reference()
    log.error("%s (reference %s): %s", what, ref, exc)
    return JSONResponse({"error": f"{what} (reference {ref})", "reference": ref}, status_code=503)


def parameter_error(exc: BaseException) -> JSONResponse | None:
    """400 for an engine error caused by a value the client sent; None for anything else."""
    if error_code(exc) not in PARAMETER_ERROR_CODES:
        return None
    ref = reference()
    log.warning("bad parameter (reference %s): %s", ref, exc)
    return JSONResponse(
        {"error": f"bad parameter: the store cannot use a value of this request (reference {ref})"},
        status_code=400,
    )
