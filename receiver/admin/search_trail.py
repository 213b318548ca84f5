"""One audit-trail event per search, not per page or refresh (issue 15 item 1).

A search is the token plus its filters (not the cursor, page size or histogram buckets). Its
first answer (``/api/events`` or ``/api/stats``, whichever comes first) is recorded as usual;
later pages, refreshes and the statistics of the same search within ``ttl`` seconds are not
recorded again, unless they return rows of a tenant the search has not been recorded for yet:
then that tenant gets its event. After ``ttl`` the same search is recorded afresh. The memory is
per receiver process, so a restart records the next page again (more trail, never less).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from receiver.admin.access import Access

Key = tuple[object, ...]
#: parameters that page or shape an answer, not what is searched
NOT_THE_SEARCH = frozenset({"cursor", "limit", "buckets", "page"})
MAX_SEARCHES = 10_000


@dataclass
class SearchMemo:
    ttl: float = 900.0
    clock: Callable[[], float] = time.monotonic
    _seen: dict[Key, tuple[float, frozenset[str]]] = field(default_factory=dict)

    @staticmethod
    def key(access: Access, params: Mapping[str, str | list[str]]) -> Key:
        search = tuple(
            sorted(
                (name, tuple(value) if isinstance(value, list) else (value,))
                for name, value in params.items()
                if name not in NOT_THE_SEARCH
            )
        )
        # a viewer token's id too: each token's first search is recorded (receiver/viewer/)
        return (access.name, access.role, access.tenants, access.token_id, search)

    def claim(self, key: Key, tenants: Iterable[str]) -> tuple[str, ...]:
        """The tenants still to record for this search (marked recorded now; :meth:`release`
        them when recording fails). Empty: this search was recorded for all of them already."""
        now = self.clock()
        self._expire(now)
        wanted = tuple(dict.fromkeys(tenants))
        started, done = self._seen.get(key, (now, frozenset()))
        missing = tuple(t for t in wanted if t not in done)
        if missing:
            self._seen[key] = (started, done | frozenset(missing))
        return missing

    def release(self, key: Key, tenants: Iterable[str]) -> None:
        if key in self._seen:
            started, done = self._seen[key]
            left = done - frozenset(tenants)
            if left:
                self._seen[key] = (started, left)
            else:
                del self._seen[key]

    def _expire(self, now: float) -> None:
        if len(self._seen) > MAX_SEARCHES:
            self._seen.clear()  # bounded memory; at worst a search is recorded once more
        for key in [k for k, (started, _) in self._seen.items() if now - started > self.ttl]:
            del self._seen[key]
