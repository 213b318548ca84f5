"""In-flight request slots shared fairly: a total cap plus a cap per ingest token and per
client address, so one token or one address cannot take every slot and starve the others."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from receiver.transport.errors import RetryLater, Throttled


@dataclass
class FairSlots:
    total: int
    per_token: int
    per_address: int
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _in_flight: int = 0
    _tokens: Counter[str] = field(default_factory=Counter)
    _addresses: Counter[str] = field(default_factory=Counter)

    @contextmanager
    def slot(self, authorization: str | None, address: str | None) -> Iterator[None]:
        """Hold one slot for the block; raises :class:`Throttled` (over a share) or
        :class:`RetryLater` (all slots taken) instead of waiting."""
        # the credential is only ever held as a digest (it is a counter key, not a secret store)
        token = hashlib.sha256((authorization or "").encode("utf-8", "replace")).hexdigest()
        address = address or "?"
        with self._lock:
            if self._in_flight >= self.total:
                raise RetryLater("receiver overloaded (too many requests in flight)", 1.0, "overloaded")
            if self._tokens[token] >= self.per_token:
                raise Throttled(
                    f"too many requests in flight for this token (limit {self.per_token}); retry later",
                    1.0,
                    "throttled_token",
                )
            if self._addresses[address] >= self.per_address:
                raise Throttled(
                    f"too many requests in flight from {address} (limit {self.per_address}); retry later",
                    1.0,
                    "throttled_address",
                )
            self._in_flight += 1
            self._tokens[token] += 1
            self._addresses[address] += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                for counter, key in ((self._tokens, token), (self._addresses, address)):
                    counter[key] -= 1
                    if counter[key] <= 0:
                        del counter[key]
