"""The emitting process's source stamp: ``audit.source.id`` and ``audit.source.seq``.

Every event this process emits carries a source id and a sequence number counting up from 1
without holes, assigned when ``record()`` hands the event to the SDK — before any processor,
exporter, batch queue or spool. A process numbers each tenant's events separately (the receiver
checks per tenant, and one tenant's auditor must not see another's numbering): the source id is
``<random process id>.<n>``, ``n`` counting the tenants (``audit.tenant.id`` values, the empty
one included) this process emitted for. The random part is new per process and after a
``fork``. The receiver records per (tenant, source) which numbers arrived, so an event lost
anywhere after emission shows up as a gap (``receiver.sources``). Events replayed from the disk
spool carry their original attributes, so a replay fills its gap instead of opening a new one.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
from collections.abc import Iterator
from typing import Any

from otel_audit import attributes as attr


class SourceStamp:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.id = secrets.token_hex(8)
        self._sources: dict[str, tuple[str, Iterator[int]]] = {}

    def stamp(self, out: dict[str, Any]) -> None:
        tenant = out.get(attr.TENANT_ID) or ""
        source = self._sources.get(tenant)
        if source is None:
            with self._lock:
                source = self._sources.get(tenant)
                if source is None:
                    source = self._sources[tenant] = (f"{self.id}.{len(self._sources)}", itertools.count(1))
        out[attr.SOURCE_ID] = source[0]
        # next() on itertools.count is one C call under the GIL: no two events get one number
        out[attr.SOURCE_SEQ] = next(source[1])


SOURCE = SourceStamp()
if hasattr(os, "register_at_fork"):
    # a forked worker is a new source: sharing the parent's numbers would hide losses
    os.register_at_fork(after_in_child=SOURCE.reset)
