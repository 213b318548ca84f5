"""A batch of events on its way to a destination: the events as /api/events shows them, in stored
order per log, each log's index range, and a stable id derived from exactly those ranges (a
redelivered batch has the same id, so a destination can drop the copy)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import orjson

from receiver.model import row_to_api


class DeliveryError(Exception):
    """The destination did not accept the batch (retried with backoff)."""


@dataclass
class Batch:
    stream: str
    events: list[dict[str, Any]]
    #: log -> (first index, last index) of this batch's events
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, stream: str, rows: list[dict[str, Any]]) -> Batch:
        ranges: dict[str, tuple[int, int]] = {}
        for row in rows:
            first, _ = ranges.get(row["log"], (row["idx"], 0))
            ranges[row["log"]] = (first, int(row["idx"]))
        return cls(stream, [row_to_api(r) for r in rows], ranges)

    @property
    def id(self) -> str:
        key = json.dumps([self.stream, sorted(self.ranges.items())], separators=(",", ":"))
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    def ndjson(self) -> bytes:
        """One event per line, keyed like /api/events."""
        return b"".join(
            orjson.dumps(e, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE) for e in self.events
        )
