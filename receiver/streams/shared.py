"""One read for streams that ask the same thing: streams with the same tenants, filter and
format share a :class:`SharedReads`, so when their positions agree (they do once caught up, and
they wake on the same commit) the engine runs the batch query (and makes the JSON) once, and the
gzip body is made once (:func:`receiver.streams.batch.gzipped`). Each stream keeps its own
positions, batching, retries and destination; a result reused within ``ttl`` seconds is a valid
batch for the same positions (events committed since then go into the next one)."""

from __future__ import annotations

import threading
import time
from typing import Any

from receiver.store.sql import Statement

#: results kept at most (a few distinct position sets while streams are at different places)
KEEP = 4


def _key(statement: Statement) -> tuple[str, str]:
    return statement.sql, repr(sorted(statement.params.items()))


class SharedReads:
    def __init__(self, ttl: float = 0.5) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._results: dict[tuple[str, str], tuple[float, Any]] = {}
        #: queries run and results reused (tests, bench)
        self.queries = 0
        self.reused = 0

    def read(self, store: Any, statement: Statement) -> Any:
        key = _key(statement)
        # held across the query: a sibling asking the same waits for this result instead of
        # running it again
        with self._lock:
            now = time.monotonic()
            hit = self._results.get(key)
            if hit is not None and now - hit[0] <= self.ttl:
                self.reused += 1
                return hit[1]
            table = store.query_table(statement)
            self.queries += 1
            self._results = {k: v for k, v in self._results.items() if now - v[0] <= self.ttl}
            if len(self._results) >= KEEP:
                self._results.pop(min(self._results, key=lambda k: self._results[k][0]))
            self._results[key] = (time.monotonic(), table)
            return table
