"""In-flight request slots shared fairly: a total cap plus a cap per ingest token and per
client address, so one token or one address cannot take every slot and starve the others."""

from __future__ import annotations

import hashlib
import threading
import time
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
    #: callers that may wait for a slot at once (``slot(wait=...)``); the rest are refused at once
    max_waiting: int = 0
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _waiting: int = 0
    _in_flight: int = 0
    _tokens: Counter[str] = field(default_factory=Counter)
    _addresses: Counter[str] = field(default_factory=Counter)

    @contextmanager
    def slot(self, authorization: str | None, address: str | None, wait: float = 0.0) -> Iterator[None]:
        """Hold one slot for the block; raises :class:`Throttled` (over a share) or
        :class:`RetryLater` (all slots taken) instead of waiting — or after waiting up to ``wait``
        seconds for one (gRPC: a burst of quick calls from one client, e.g. an SDK exporting
        each record as its own call, is then served in turn instead of refused: the JS exporter
        does not retry gRPC errors). At most ``max_waiting`` callers wait at once."""
        # the credential is only ever held as a digest (it is a counter key, not a secret store)
        token = hashlib.sha256((authorization or "").encode("utf-8", "replace")).hexdigest()
        address = address or "?"
        with self._lock:
            refusal = self._refusal(token, address)
            if refusal is not None and wait > 0 and self._waiting < self.max_waiting:
                deadline = time.monotonic() + wait
                self._waiting += 1
                try:
                    while refusal is not None and (remaining := deadline - time.monotonic()) > 0:
                        self._lock.wait(remaining)
                        refusal = self._refusal(token, address)
                finally:
                    self._waiting -= 1
            if refusal is not None:
                raise refusal
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
                self._lock.notify_all()

    def _refusal(self, token: str, address: str) -> RetryLater | None:
        if self._in_flight >= self.total:
            return RetryLater("receiver overloaded (too many requests in flight)", 1.0, "overloaded")
        if self._tokens[token] >= self.per_token:
            return Throttled(
                f"too many requests in flight for this token (limit {self.per_token}); retry later",
                1.0,
                "throttled_token",
            )
        if self._addresses[address] >= self.per_address:
            return Throttled(
                f"too many requests in flight from {address} (limit {self.per_address}); retry later",
                1.0,
                "throttled_address",
            )
        return None
