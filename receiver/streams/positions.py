"""A stream's positions kept durably on the receiver's own disk, for the embedded store.

A delivered batch's new positions must be durable before the next batch goes (a crash then
resends that one batch only). In the store that is one INSERT per batch, and the embedded engine
spends 8–10 ms of the receiver's CPU on each whatever it holds (docs/BENCHMARKS.md): at the
default batch size and 20 k events/s that is more CPU than ingest itself. With chDB only one
process can own the store, so no other receiver ever takes a stream over from this one: the
positions go to a small file next to the store's data (written whole, fsync'd, renamed) after
every batch, and to the store every few seconds and when the stream stops. Whoever reads the
positions (a restart after kill -9, status, a replay) takes, per log, the later of the two.

The file also holds the replay marker it was written under: after a replay (which moves positions
back in the store and adds a marker) a file written before it no longer counts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receiver.store import data_subdirectory


@dataclass(frozen=True)
class SavedPositions:
    #: the replay marker (last reset time, reset count) when these positions were written
    marker: list[Any]
    positions: dict[str, int]


class PositionFile:
    def __init__(self, directory: Path, stream: str) -> None:
        self.directory = directory
        # stream names are ``[A-Za-z0-9_.-]{1,64}`` (receiver/streams/config.py): a safe file name
        self.path = directory / f"{stream}.positions.json"

    def write(self, positions: dict[str, int], marker: list[Any]) -> None:
        """Replace the file with ``positions`` and return once they are on disk."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps({"marker": marker, "positions": positions}, sort_keys=True).encode()
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)

    def read(self) -> SavedPositions | None:
        """The positions last written, or None (no file, or one that cannot be read)."""
        try:
            raw = json.loads(self.path.read_bytes())
            return SavedPositions(list(raw["marker"]), {str(k): int(v) for k, v in raw["positions"].items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None


def local_directory(store: Any) -> Path | None:
    """Where an embedded store's streams keep their position files (``<data dir>/streams``,
    ``…/streams/<database>`` for another database); None for a ClickHouse server store, whose
    streams another receiver may take over (positions go to the store after every batch)."""
    return data_subdirectory(store, "streams")


def merged(stored: dict[str, int], saved: SavedPositions | None, marker: list[Any]) -> dict[str, int]:
    """Per log, the later of the store's position and the file's (if the file was written
    under the current replay marker)."""
    if saved is None or saved.marker != marker:
        return dict(stored)
    out = dict(stored)
    for log, position in saved.positions.items():
        out[log] = max(position, out.get(log, 0))
    return out
