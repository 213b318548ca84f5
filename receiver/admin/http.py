"""What every admin route shares: the JSON error answer, the fail-closed refusal, parameters given at most once."""

from __future__ import annotations

from starlette.responses import JSONResponse

from receiver.filters import FilterError, parse_bounded


class Unrecorded(Exception):
    """The access could not be written to the audit trail, so it is not answered."""


def error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def one_value(values: str | list[str] | None) -> str | None:
    """A parameter that is given at most once."""
    if values is None or isinstance(values, str):
        return values
    if len(values) > 1:
        raise FilterError("a paging or bucket parameter was given more than once")
    return values[0] if values else None


def parse_buckets(raw: str | None) -> int:
    from receiver.store.stats import DEFAULT_BUCKETS, MAX_BUCKETS

    return parse_bounded("buckets", raw, DEFAULT_BUCKETS, MAX_BUCKETS)
