"""One read for streams that ask the same thing: streams with the same tenants, filter and
format share a :class:`SharedReads`, so when their positions agree (they do once caught up, and
they wake on the same commit) the engine runs the batch query (and makes the JSON) once, and the
gzip body is made once (:func:`receiver.streams.batch.gzipped`). Each stream keeps its own
positions, batching, retries and destination; a result reused within ``ttl`` seconds is a valid
batch for the same positions (events committed since then go into the next one), and taking a
sibling's batch keeps the two at the same positions, so their next reads match again."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from receiver.store.sql import Statement

#: results kept at most (a few distinct position sets while streams are at different places)
KEEP = 4


def _key(statement: Statement) -> tuple[str, str]:
    return statement.sql, repr(sorted(statement.params.items()))


@dataclass
class _Result:
    at: float
    table: Any
    #: the runners that took it: a runner asking the same again wants newer events, not this
    takers: set[int] = field(default_factory=set)


class SharedReads:
    def __init__(self, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._results: dict[tuple[str, str], _Result] = {}
        #: queries run and results reused (tests, bench)
        self.queries = 0
        self.reused = 0

    def read(self, store: Any, statement: Statement, asker: object = None) -> tuple[Any, bool]:
        """The statement's result, and whether it was a sibling's (run again when ``asker``
        already took this one, or it is older than ``ttl``)."""
        key, who = _key(statement), id(asker)
        # held across the query: a sibling asking the same waits for this result instead of
        # running it again
        with self._lock:
            now = time.monotonic()
            hit = self._results.get(key)
            if hit is not None and now - hit.at <= self.ttl and who not in hit.takers:
                hit.takers.add(who)
                self.reused += 1
                return hit.table, True
            table = store.query_table(statement)
            self.queries += 1
            self._results = {k: v for k, v in self._results.items() if now - v.at <= self.ttl}
            if len(self._results) >= KEEP:
                self._results.pop(min(self._results, key=lambda k: self._results[k].at))
            self._results[key] = _Result(time.monotonic(), table, {who})
            return table, False
