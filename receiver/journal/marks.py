"""The journal's in-memory high-water marks, snapshotted into ``STATE`` (:mod:`.state`).

Not thread-safe: the journal calls every method holding its lock. Sequence numbers are the
journal records' (1, 2, 3, … never reused); ``next_seq`` is passed in by the journal, which owns
the numbering.
"""

from __future__ import annotations

from collections import deque

from receiver.journal.state import JournalState
from receiver.journal.tamper import ranges


class Marks:
    def __init__(self) -> None:
        self.state = JournalState()
        #: the last record written / covered by a successful fsync (acknowledged)
        self.written_seq = 0
        self.synced_seq = 0
        self._inflight: deque[int] = deque()  # appended, not yet committed or refused, in order
        self._done: set[int] = set()  # committed or refused, still behind an in-flight one
        self._gone: list[tuple[int, int]] = []
        self._segments: dict[int, tuple[int, int]] = {}  # segment → (first seq, last seq)

    def restore(
        self, state: JournalState | None, present: set[int], segments: dict[int, tuple[int, int]]
    ) -> int:
        """At open, after the check: start from ``state`` and what the segments hold; what was
        found missing is excused from now on (reported once). Returns the next seq to use."""
        next_seq = max(present, default=0) + 1
        if state is not None:
            self.state = state
            next_seq = max(next_seq, state.next_seq)
            self._gone = [(lo, hi) for lo, hi in state.gone]
            self._gone += ranges(
                s for s in range(state.committed_seq + 1, state.acked_seq + 1) if s not in present
            )
        self.written_seq = self.synced_seq = next_seq - 1
        self._inflight.extend(sorted(present))
        self._segments = dict(segments)
        return next_seq

    def appended(self, seq: int) -> None:
        self._inflight.append(seq)

    def written(self, segment: int, seq: int) -> None:
        self.written_seq = seq
        first, _ = self._segments.get(segment, (seq, 0))
        self._segments[segment] = (first, seq)

    def synced(self, seq: int) -> None:
        self.synced_seq = max(self.synced_seq, seq)

    def committed(self, seqs: list[int]) -> None:
        self._done.update(seqs)
        self._advance()

    def refused(self, seq: int) -> None:
        """``seq`` was not acknowledged: it may be absent at the next start."""
        self._gone.append((seq, seq))
        self._done.add(seq)
        self._advance()

    def segment_deleted(self, segment: int, next_seq: int) -> tuple[int, int] | None:
        """Forget a segment about to be deleted; its seqs are excused if an older record still
        waits (committed out of order). Returns its range, None if it held no records."""
        seqs = self._segments.pop(segment, None)
        if seqs is not None and seqs[1] > self.committed_seq(next_seq):
            self._gone.append(seqs)
        return seqs

    def segment_kept(self, segment: int, seqs: tuple[int, int]) -> None:
        """The deletion failed: the segment's records are still there."""
        self._segments[segment] = seqs

    def committed_seq(self, next_seq: int) -> int:
        return self._inflight[0] - 1 if self._inflight else next_seq - 1

    def snapshot(self, next_seq: int, segment: int) -> JournalState:
        committed = self.committed_seq(next_seq)
        self._gone = [(lo, hi) for lo, hi in self._gone if hi > committed]
        self.state = JournalState(
            journal_id=self.state.journal_id,
            version=self.state.version + 1,
            acked_seq=self.synced_seq,
            committed_seq=committed,
            next_seq=next_seq,
            last_segment=max(segment, self.state.last_segment),
            gone=[[lo, hi] for lo, hi in self._gone],
        )
        return self.state

    def _advance(self) -> None:
        while self._inflight and self._inflight[0] in self._done:
            self._done.discard(self._inflight.popleft())
