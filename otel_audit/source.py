"""The emitting process's source stamp: ``audit.source.id`` and ``audit.source.seq``.

Every event this process emits carries a random source id (new per process, and after a
``fork``) and a sequence number counting up from 1 without holes, assigned when ``record()``
hands the event to the SDK — before any processor, exporter, batch queue or spool. The receiver
records per (tenant, source) which numbers arrived, so an event lost anywhere after emission
shows up as a gap (``receiver.sources``). Events replayed from the disk spool carry their original
attributes, so a replay fills its gap instead of opening a new one.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading

from otel_audit import attributes as attr


class SourceStamp:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.id = secrets.token_hex(8)
        self._counter = itertools.count(1)

    def stamp(self, out: dict[str, object]) -> None:
        with self._lock:
            seq = next(self._counter)
        out[attr.SOURCE_ID] = self.id
        out[attr.SOURCE_SEQ] = seq


SOURCE = SourceStamp()
if hasattr(os, "register_at_fork"):
    # a forked worker is a new source: sharing the parent's numbers would hide losses
    os.register_at_fork(after_in_child=SOURCE.reset)
