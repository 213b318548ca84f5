"""The journal's durable high-water marks (``STATE``): what was acknowledged, what the store holds.

Without it, a journal cut short at a record boundary (or missing a whole segment file) looks
exactly like one that never held more, so acknowledged events could vanish unnoticed. The state
file records, after group fsyncs (written by a background thread at most every 10 ms, so
acknowledgements do not wait for it) and synchronously before a segment file is deleted whose
records the state on disk does not yet count as committed:

- ``acked_seq``: the highest record sequence number covered by a successful fsync, i.e.
  acknowledged to a client;
- ``committed_seq``: every record up to here is in the store (or was refused to its client);
- ``gone``: seq ranges above ``committed_seq`` that may legitimately be absent (appends whose
  write or fsync failed, so they were never acknowledged);
- ``next_seq`` / ``last_segment``: numbering never restarts, even once every segment is deleted;
- ``journal_id``: random, made when the journal is created.

At open, every record in ``(committed_seq, acked_seq]`` that is not ``gone`` must be present and
intact (:mod:`receiver.journal.tamper`). A crash only tears records that were not yet fsync'd,
whose seq is above any ``acked_seq`` ever written, so a torn tail is never mistaken for
tampering.

Layout: two 512-byte slots, written alternately with ``pwrite`` + ``fdatasync``; each is
``magic "OAJS" | version u64 | crc32 u32 | length u16 | JSON``. The valid slot with the higher
version wins, so a write torn by a crash leaves the previous state readable.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

FILE_NAME = "STATE"
SLOT = 512
_MAGIC = b"OAJS"
_HEAD = struct.Struct("<4sQIH")


class StateCorrupt(ValueError):
    """Neither slot of the state file holds a valid state."""


@dataclass(slots=True)
class JournalState:
    journal_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    version: int = 0
    acked_seq: int = 0
    committed_seq: int = 0
    next_seq: int = 1
    last_segment: int = 0
    gone: list[list[int]] = field(default_factory=list)

    def encode(self) -> bytes:
        body = asdict(self)
        version = body.pop("version")
        gone = body["gone"]
        data = json.dumps(body, separators=(",", ":")).encode()
        while len(data) > SLOT - _HEAD.size and gone:
            # never expected (refused appends are rare and pruned as commits pass them); keep
            # the widest range, dropping precision, rather than failing to record the state
            gone[:] = [[gone[0][0], gone[-1][1]]] if len(gone) > 1 else []
            data = json.dumps(dict(body, gone=gone), separators=(",", ":")).encode()
        crc = zlib.crc32(data, zlib.crc32(struct.pack("<Q", version)))
        return (_HEAD.pack(_MAGIC, version, crc, len(data)) + data).ljust(SLOT, b"\0")


def _decode(raw: bytes) -> JournalState | None:
    if len(raw) < _HEAD.size:
        return None
    magic, version, crc, length = _HEAD.unpack_from(raw)
    data = raw[_HEAD.size : _HEAD.size + length]
    if magic != _MAGIC or len(data) != length:
        return None
    if zlib.crc32(data, zlib.crc32(struct.pack("<Q", version))) != crc:
        return None
    try:
        body = json.loads(data)
        return JournalState(version=version, **body)
    except (ValueError, TypeError):
        return None


class StateFile:
    """The open ``STATE`` file; :meth:`save` is safe to call from several threads."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.path = Path(directory) / FILE_NAME
        self._fsync = fsync
        self._fd = -1
        self._lock = threading.Lock()
        self._written = -1
        #: the committed mark of the newest state on disk
        self.durable_committed = 0

    @staticmethod
    def exists(directory: Path) -> bool:
        return (Path(directory) / FILE_NAME).exists()

    def load(self) -> JournalState:
        """The newest valid state; raises :class:`StateCorrupt` if neither slot is valid."""
        raw = self.path.read_bytes()
        states = [s for s in (_decode(raw[:SLOT]), _decode(raw[SLOT : 2 * SLOT])) if s is not None]
        if not states:
            raise StateCorrupt(f"{self.path}: no valid state in either slot")
        return max(states, key=lambda s: s.version)

    def try_load(self) -> tuple[JournalState | None, str]:
        """(state, "") ; (None, "") when there is no state file; (None, why) when unreadable."""
        if not self.path.exists():
            return None, ""
        try:
            return self.load(), ""
        except (OSError, StateCorrupt) as exc:
            return None, str(exc)

    def open(self) -> None:
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if created and self._fsync:
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def save(self, state: JournalState) -> None:
        """Write ``state`` durably unless a newer version was written already (a slow writer
        must not roll the marks back)."""
        with self._lock:
            if self._fd < 0 or state.version <= self._written:
                return
            os.pwrite(self._fd, state.encode(), (state.version % 2) * SLOT)
            if self._fsync:
                os.fdatasync(self._fd)
            self._written = state.version
            self.durable_committed = state.committed_seq

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
