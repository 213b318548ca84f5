"""A stream's rows in ``stream_state``: its lease (which receiver delivers it this term), its
positions (in the store after every batch, or with the embedded store in a position file after
every batch and in the store every few seconds: receiver/streams/positions.py) and the replay
marker (when positions were last moved back)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from receiver.store import streams_sql as q
from receiver.streams.positions import PositionFile, merged

log = logging.getLogger("otel_audit.streams")
#: with a position file, how often the positions also go to the store
STORE_POSITIONS_EVERY_SECONDS = 5.0


def marker_key(marker: tuple[Any, int]) -> list[Any]:
    """A replay marker (last reset time, reset count) as the position file keeps it."""
    at, count = marker
    return [at.isoformat() if isinstance(at, dt.datetime) else at, count]


class Bookkeeping:
    def __init__(
        self,
        store: Any,
        stream: str,
        lease_seconds: int,
        holder: str,
        clock: Callable[[], dt.datetime],
        position_file: PositionFile | None = None,
    ) -> None:
        self.store = store
        self.stream = stream
        self.lease_seconds = lease_seconds
        self.holder = holder
        self.clock = clock
        self.position_file = position_file
        #: positions in the file, not yet in the store
        self.unstored: dict[str, int] = {}
        self._stored_at = float("-inf")
        self._claimed_term = -1
        self._leads = False
        self._lead_until = 0.0

    def insert(self, kind: str, items: list[tuple[str, str]]) -> None:
        self.store.insert_into(q.STATE_TABLE, q.state_table(self.stream, kind, items, self.clock()))

    # -- the lease -----------------------------------------------------------------------
    def leads(self) -> bool:
        """Does this receiver deliver the stream this term? (Claims the term first.)"""
        # a claim query per batch would cost more than the batch's delivery at full rate, and a
        # hand-over waits for a new term anyway
        if time.monotonic() < self._lead_until:
            return self._leads
        term = int(self.clock().timestamp() // self.lease_seconds)
        if term != self._claimed_term:
            self.insert("lease", [(str(term), self.holder)])
            self._claimed_term = term
        rows = self.store.query_table(q.lease_claims(self.store.database, self.stream, term)).to_pylist()
        self._leads = bool(rows) and rows[0]["holder"] == self.holder
        if self._leads:  # asked again within a tenth of a term (5 s at most), and as the term ends
            term_left = (term + 1) * self.lease_seconds - self.clock().timestamp()
            self._lead_until = time.monotonic() + min(5.0, self.lease_seconds / 10, max(0.0, term_left))
        else:
            self._lead_until = 0.0
        return self._leads

    def release(self) -> None:
        """Let another receiver (or this one restarted) lead without waiting for the next term."""
        self.insert("release", [(str(self._claimed_term), self.holder)])

    # -- positions -----------------------------------------------------------------------
    def reset_marker(self) -> tuple[Any, int]:
        row = self.store.query_table(q.last_state(self.store.database, self.stream, "reset")).to_pylist()[0]
        return (row["at"], int(row["n"]))

    def load(self, marker: tuple[Any, int] | None = None) -> tuple[dict[str, int], dict[str, int]]:
        """The store's positions, and per log the later of those and the position file's (when
        the file was written under the replay ``marker``: the current one, asked if not given)."""
        rows = self.store.query_table(q.positions(self.store.database, self.stream)).to_pylist()
        stored = {r["log"]: int(r["next"]) for r in rows}
        if self.position_file is None:
            return stored, stored
        current = marker if marker is not None else self.reset_marker()
        return stored, merged(stored, self.position_file.read(), marker_key(current))

    def reloaded(self, stored: dict[str, int], positions: dict[str, int]) -> None:
        """Positions taken from the file (a restart after kill -9) go to the store at the next save."""
        self.unstored = {k: v for k, v in positions.items() if v != stored.get(k)}

    def save(self, positions: dict[str, int], moved: dict[str, int], marker: tuple[Any, int]) -> None:
        """A delivered batch moved ``moved``; ``positions`` are all the stream's now. Durable on return."""
        if self.position_file is None:
            self.insert("position", [(k, str(v)) for k, v in sorted(moved.items())])
            return
        self.unstored.update(moved)
        try:
            self.position_file.write(positions, marker_key(marker))
        except OSError as exc:  # a full or read-only disk: the store keeps them instead
            log.warning(
                "stream %s: position file not written (%s); positions go to the store", self.stream, exc
            )
            self.store_unstored()
            return
        if time.monotonic() - self._stored_at >= STORE_POSITIONS_EVERY_SECONDS:
            try:
                self.store_unstored()
            except Exception:  # noqa: BLE001 - the file holds them; the store gets them next time
                log.warning("stream %s: positions not stored yet (kept on disk)", self.stream)

    def store_unstored(self) -> None:
        """The positions only the file holds so far, into the store."""
        if self.unstored:
            self.insert("position", [(k, str(v)) for k, v in sorted(self.unstored.items())])
            self.unstored = {}
        self._stored_at = time.monotonic()
