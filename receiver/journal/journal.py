"""The receiver-side journal: an append-only, crash-safe log of accepted requests' tables, so
an export can be acknowledged once its bytes are on disk instead of once the store inserted them.

- **Group fsync.** Each append writes its record under a lock, then waits for an ``fdatasync``
  covering its bytes. The first waiter runs the fsync for everything written so far; the others
  wait for it (leader/followers), so concurrent requests share one fsync and a request is
  acknowledged only once an fsync that started after its write returned.
- **Segments.** Records go to numbered segment files (``<n>.seg``); a new one is started when the
  current one would pass ``segment_bytes``, and when the store has caught up with a current
  segment of some size. A segment is deleted once every record in it is committed to the store.
- **Bounded.** ``max_bytes`` caps the segments' total size; an append that would pass it raises
  :class:`JournalFull` (the receiver answers UNAVAILABLE / 503 with a retry delay).
- **Recovery.** :meth:`Journal.open` takes an exclusive ``flock`` on the directory (one receiver
  process per journal), reads every segment, truncates a torn tail, and returns the records not
  yet known to be committed. Replaying one that did reach the store is harmless: the writer
  drops ids already stored.
- **Tamper evidence.** ``STATE`` (:mod:`.state`) keeps the acknowledged and committed high-water
  marks; at open, acknowledged records that are gone are reported (:mod:`.tamper`) in
  :attr:`Journal.findings` and appended to ``FINDINGS.jsonl`` (the receiver records them in
  the store), while a crash-torn tail of unacknowledged records is not.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from receiver.journal import framing
from receiver.journal.marks import Marks
from receiver.journal.state import JournalState, StateFile
from receiver.journal.tamper import JournalFinding, append_outbox, check

log = logging.getLogger("otel_audit.journal")

SUFFIX = ".seg"
LOCK_FILE = "LOCK"
FINDINGS_FILE = "FINDINGS.jsonl"
#: the background state writer's pace: one small fsync per this interval at most, under load
STATE_INTERVAL = 0.01
#: once the store has caught up, a current segment at least this big is closed and deleted, so a
#: quiet receiver does not keep (and replay at start) a long tail of committed records
ROTATE_DRAINED_BYTES = 1 << 20


class JournalError(OSError):
    """The journal cannot take the record (disk error, directory in use): retry later."""


class JournalFull(Exception):
    """The journal holds ``max_bytes`` already: the store is behind; retry later."""


@dataclass(slots=True, eq=False)
class Entry:
    """One request's rows, durable in the journal, until the store has them."""

    seq: int
    segment: int
    table: pa.Table
    #: monotonic time of the append (0 for a record recovered at start: commit it at once)
    appended_at: float = field(default=0.0)


class Journal:
    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = 256 << 20,
        segment_bytes: int = 16 << 20,
        fsync: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self._max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._cond = threading.Condition()
        self._lock_fd: int | None = None
        self._fd = -1
        self._segment = 0
        self._segment_size = 0
        self._sizes: dict[int, int] = {}  # segment → bytes on disk
        self._outstanding: dict[int, int] = {}  # segment → records not yet committed
        self._total = 0
        self._next_seq = 1
        self._written = 0  # logical bytes written since open, across segments
        self._synced = 0
        self._syncing = False
        self._failed: list[tuple[int, int]] = []  # [start, end) ranges whose fsync failed
        self._closed = False
        # tamper evidence (state.py): seqs written / fsync'd, records not yet committed in seq
        # order, and seq ranges that may be absent without being damage
        self._state_file = StateFile(self.directory, fsync=fsync)
        self._marks = Marks()
        self._seg_seqs: dict[int, tuple[int, int]] = {}  # at open: segment → (first seq, last seq)
        self._dirty = threading.Event()
        self._keeper: threading.Thread | None = None
        #: what the start-up check found (see :mod:`receiver.journal.tamper`)
        self.findings: list[JournalFinding] = []

    # -- lifecycle ------------------------------------------------------------------------------
    def open(self) -> list[Entry]:
        """Lock the directory, recover what it holds, start a fresh segment. Returns the
        recovered records, oldest first."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(lock_fd)
            raise JournalError(f"journal {self.directory} is in use by another receiver process") from exc
        self._lock_fd = lock_fd
        state, state_error = self._state_file.try_load()
        recovered: list[Entry] = []
        last = 0
        segments = self._segments()
        for number, path in segments:
            last = max(last, number)
            scan = framing.scan(path)
            if scan.damage:
                log.warning("journal segment %s: skipped damage: %s", path.name, scan.damage)
            if scan.valid_end < scan.file_size:
                os.truncate(path, scan.valid_end)
            if not scan.records:
                path.unlink()
                continue
            for record in scan.records:
                recovered.append(Entry(record.seq, number, record.table))
                self._next_seq = max(self._next_seq, record.seq + 1)
            self._seg_seqs[number] = (scan.records[0].seq, scan.records[-1].seq)
            self._sizes[number] = scan.valid_end
            self._outstanding[number] = len(scan.records)
            self._total += scan.valid_end
        self._check(state, state_error, recovered, len(segments))
        with self._cond:
            self._start_segment(max(last, self._marks.state.last_segment) + 1)
            self._state_file.open()
            self._save_locked()
        self._keeper = threading.Thread(target=self._keep_state, name="otel-audit-journal-state", daemon=True)
        self._keeper.start()
        if recovered:
            log.warning(
                "journal %s: %d records (%d events) not yet known to be in the store; replaying",
                self.directory,
                len(recovered),
                sum(e.table.num_rows for e in recovered),
            )
        return recovered

    def close(self) -> None:
        """Release the files and the directory lock; what is not committed stays for next start."""
        with self._cond:
            self._closed = True
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
                if self._outstanding.get(self._segment, 0) == 0:
                    self._delete(self._segment)
            self._save_locked()
            self._state_file.close()
            self._dirty.set()  # wakes the keeper, which sees _closed and ends
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    @property
    def bytes_on_disk(self) -> int:
        return self._total

    # -- appending ------------------------------------------------------------------------------
    def append(self, table: pa.Table) -> Entry:
        """Write ``table`` and return once it is on disk (fsync'd). Raises :class:`JournalFull`
        or :class:`JournalError`; then the record is not acknowledged (it may still be replayed:
        a client's retry of it is dropped as a duplicate)."""
        payload = framing.serialize(table)
        crc = framing.payload_crc(payload)
        size = framing.HEADER_SIZE + payload.size
        with self._cond:
            while True:
                if self._closed:
                    raise JournalError("the journal is closed")
                if self._fd < 0:
                    self._start_segment(self._segment + 1)  # the last one failed: try again
                if self._total + size > self._max_bytes:
                    if self._segment_size and not self._outstanding.get(self._segment) and not self._syncing:
                        self._rotate()  # the current segment is all in the store: free it
                        continue
                    raise JournalFull(
                        f"journal holds {_mib(self._total)} of events not yet in the store "
                        f"(max {_mib(self._max_bytes)})"
                    )
                if self._segment_size == 0 or self._segment_size + size <= self._segment_bytes:
                    break
                if self._syncing:
                    self._cond.wait()  # the leader's fsync is on the current file: let it finish
                    continue
                self._rotate()
            entry = Entry(self._next_seq, self._segment, table, time.monotonic())
            self._next_seq += 1
            self._marks.appended(entry.seq)
            head = framing.header(entry.seq, table.num_rows, payload, crc)
            start = self._written
            try:
                _write_all(self._fd, [head, payload])
            except OSError as exc:
                self._marks.refused(entry.seq)
                self._fail_segment(exc, self._written + size)
                raise JournalError(f"cannot write the journal: {exc}") from exc
            self._written += size
            self._marks.written(self._segment, entry.seq)
            self._segment_size += size
            self._sizes[self._segment] = self._sizes.get(self._segment, 0) + size
            self._outstanding[self._segment] = self._outstanding.get(self._segment, 0) + 1
            self._total += size
            try:
                self._wait_synced(start, self._written)
            except JournalError:
                self._marks.refused(entry.seq)
                self._forget(entry)
                raise
        return entry

    def _wait_synced(self, start: int, end: int) -> None:
        """Holds _cond. Returns once [start, end) is covered by a successful fsync."""
        while True:
            for lo, hi in self._failed:
                if lo <= start < hi:
                    raise JournalError("the journal's fsync failed")
            if self._synced >= end:
                return
            if self._syncing:
                self._cond.wait()
                continue
            self._syncing = True
            target, target_seq, fd = self._written, self._marks.written_seq, self._fd
            self._cond.release()
            error: OSError | None = None
            try:
                if self._fsync:
                    os.fdatasync(fd)
            except OSError as exc:
                error = exc
            finally:
                self._cond.acquire()
            self._syncing = False
            if error is None:
                self._synced = max(self._synced, target)
                self._marks.synced(target_seq)
                self._dirty.set()
            elif self._fd == fd:
                self._fail_segment(error, self._written)
            self._cond.notify_all()

    # -- committing -----------------------------------------------------------------------------
    def committed(self, entries: list[Entry]) -> None:
        """The store holds these entries: free the segments nothing else needs."""
        with self._cond:
            self._marks.committed([entry.seq for entry in entries])
            self._dirty.set()  # the keeper records the new committed mark
            for entry in entries:
                self._forget_locked(entry.segment)
            if (
                self._outstanding.get(self._segment, 0) == 0
                and self._segment_size >= min(ROTATE_DRAINED_BYTES, self._max_bytes // 4)
                and not self._syncing
                and self._fd >= 0
                and not self._closed
            ):
                try:
                    self._rotate()
                except JournalError as exc:
                    log.error("%s", exc)  # the next append tries a new segment again

    def _forget(self, entry: Entry) -> None:
        self._forget_locked(entry.segment)

    def _forget_locked(self, segment: int) -> None:
        left = self._outstanding.get(segment, 0) - 1
        self._outstanding[segment] = left
        if left <= 0 and segment != self._segment:
            self._delete(segment)

    # -- segments (all hold _cond) --------------------------------------------------------------
    def _segments(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.glob(f"*{SUFFIX}"):
            stem = path.name[: -len(SUFFIX)]
            if stem.isdigit():
                found.append((int(stem), path))
        return sorted(found)

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:020d}{SUFFIX}"

    def _start_segment(self, number: int) -> None:
        try:
            self._fd = os.open(self._path(number), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            if self._fsync:
                dir_fd = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)  # the new file's name must survive a crash with its records
                finally:
                    os.close(dir_fd)
        except OSError as exc:
            self._fd = -1
            raise JournalError(f"cannot start journal segment in {self.directory}: {exc}") from exc
        self._segment = number
        self._segment_size = 0
        self._sizes[number] = 0
        self._outstanding[number] = 0

    def _rotate(self) -> None:
        """Close the current segment (fsync'd) and start the next. Caller checked not _syncing."""
        old = self._segment
        try:
            if self._fsync and self._synced < self._written:
                os.fdatasync(self._fd)
        except OSError as exc:
            self._fail_segment(exc, self._written)
            return
        self._synced = self._written
        self._marks.synced(self._marks.written_seq)
        os.close(self._fd)
        self._fd = -1
        if self._outstanding.get(old, 0) <= 0:
            self._delete(old)
        self._start_segment(old + 1)

    def _fail_segment(self, error: OSError, written_end: int) -> None:
        """A write or fsync failed. The kernel may have dropped the dirty pages, so nothing
        written since the last good fsync is known durable: refuse those records (their waiters
        raise), leave the file to recovery and go on in a new segment."""
        log.error("journal segment %s failed: %s", self._segment, error)
        while self._syncing:  # another thread's fsync still uses this file descriptor
            self._cond.wait()
        self._failed.append((self._synced, written_end))
        self._written = max(self._written, written_end)
        old = self._segment
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = -1
        if self._outstanding.get(old, 0) <= 0:
            self._delete(old)
        self._cond.notify_all()
        # the next append starts a new segment (_fd < 0)

    def _delete(self, segment: int) -> None:
        seqs = self._marks.segment_deleted(segment, self._next_seq)
        try:
            if seqs is not None and seqs[1] > self._state_file.durable_committed:
                self._save_locked()  # the marks on disk must excuse these records before they go
            self._path(segment).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("cannot delete committed journal segment %s: %s", segment, exc)
            if seqs is not None:
                self._marks.segment_kept(segment, seqs)
            return
        self._total -= self._sizes.pop(segment, 0)
        self._outstanding.pop(segment, None)

    # -- tamper evidence (see state.py and tamper.py) ------------------------------------------
    def _check(
        self, state: JournalState | None, state_error: str, recovered: list[Entry], files: int
    ) -> None:
        """Compare the marks with what the segments hold; report, then re-base the marks."""
        present = {entry.seq for entry in recovered}
        self.findings = check(str(self.directory), state, present, files, state_error=state_error)
        for finding in self.findings:
            log.critical("JOURNAL TAMPERING: %s: %s", self.directory, finding.detail)
        if self.findings:
            append_outbox(self.directory / FINDINGS_FILE, self.findings, fsync=self._fsync)
        self._next_seq = max(self._next_seq, self._marks.restore(state, present, self._seg_seqs))

    def _save_locked(self) -> None:
        """Holds _cond: write the marks now (segment deletion, close)."""
        try:
            self._state_file.save(self._snapshot())
        except OSError as exc:
            log.error("cannot write the journal state %s: %s", self._state_file.path, exc)

    def _snapshot(self) -> JournalState:
        return self._marks.snapshot(self._next_seq, self._segment)

    def _keep_state(self) -> None:
        """After group fsyncs, record the new acknowledged mark (off the ack path; at most one
        state fsync per STATE_INTERVAL, which bounds the window a crash leaves unrecorded)."""
        while True:
            self._dirty.wait()
            self._dirty.clear()
            with self._cond:
                if self._closed:
                    return
                snapshot = self._snapshot()
            try:
                self._state_file.save(snapshot)
            except OSError as exc:
                log.error("cannot write the journal state %s: %s", self._state_file.path, exc)
            time.sleep(STATE_INTERVAL)


def _write_all(fd: int, parts: list[bytes | pa.Buffer]) -> None:
    views = [memoryview(p) for p in parts]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
