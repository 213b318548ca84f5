"""The tree's stored hashes, C2SP tlog-tiles style, and how proofs read them.

A tile at level L, index i holds up to 256 consecutive hashes: at level 0 the leaf hashes
i·256 … i·256+255, at level L the roots of the complete subtrees of 256^L leaves that start at
(i·256 + j)·256^L. A partial tile (fewer than 256) is stored again each time it grows, so the
table is append-only; readers take the widest copy. Any MTH(D[lo:hi]) a proof needs is then a few
tiles away, without reading a single event (and after the events were archived or expired).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from receiver.integrity.merkle import EMPTY_ROOT, node_hash, split

TILE_WIDTH = 256
TILE_HEIGHT = 8


class TileMissing(LookupError):
    """A hash a proof needs is not in the stored tiles."""


@dataclass(frozen=True, slots=True)
class Tile:
    origin: str
    level: int
    index: int
    hashes: bytes  # width × 32 bytes

    @property
    def width(self) -> int:
        return len(self.hashes) // 32


def tile_root(hashes: list[bytes]) -> bytes:
    """MTH of a full tile's 256 hashes (a complete subtree: plain pairwise levels)."""
    sha256 = hashlib.sha256
    level = hashes
    while len(level) > 1:
        level = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


def _split32(data: bytes) -> list[bytes]:
    return [data[i : i + 32] for i in range(0, len(data), 32)]


@dataclass(slots=True)
class TreeEdge:
    """The right edge of one log's tree: per level, the full tiles so far and the partial one."""

    origin: str
    full: list[int] = field(default_factory=list)  # full tiles per level
    partial: list[list[bytes]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return (self.full[0] * TILE_WIDTH + len(self.partial[0])) if self.full else 0

    @classmethod
    def from_last_tiles(cls, origin: str, last: Iterable[Tile]) -> TreeEdge:
        """The edge from the widest copy of the last tile of each level."""
        edge = cls(origin)
        for tile in sorted(last, key=lambda t: t.level):
            if tile.level != len(edge.full):
                break
            if tile.width == TILE_WIDTH:
                edge.full.append(tile.index + 1)
                edge.partial.append([])
            else:
                edge.full.append(tile.index)
                edge.partial.append(_split32(tile.hashes))
        return edge

    def append(self, leaves: list[bytes]) -> list[Tile]:
        """Add leaf hashes; returns every tile that changed (full ones and the new partials)."""
        out: list[Tile] = []
        items, level = leaves, 0
        while items:
            if level == len(self.full):
                self.full.append(0)
                self.partial.append([])
            buf = self.partial[level] + items
            ups: list[bytes] = []
            pos = 0
            while len(buf) - pos >= TILE_WIDTH:
                chunk = buf[pos : pos + TILE_WIDTH]
                out.append(Tile(self.origin, level, self.full[level], b"".join(chunk)))
                ups.append(tile_root(chunk))
                self.full[level] += 1
                pos += TILE_WIDTH
            self.partial[level] = buf[pos:]
            if self.partial[level]:
                out.append(Tile(self.origin, level, self.full[level], b"".join(self.partial[level])))
            items, level = ups, level + 1
        return out


class TileHashes:
    """MTH(D[lo:hi]) from stored tiles, for the proofs of :mod:`receiver.integrity.merkle`.

    ``load(level, index)`` returns a tile's hashes (widest stored copy) or None; tiles are
    cached for the life of the object."""

    def __init__(self, load: Callable[[int, int], bytes | None]) -> None:
        self._load = load
        self._cache: dict[tuple[int, int], bytes] = {}
        self._roots: dict[tuple[int, int], bytes] = {}  # (lo, height) -> complete subtree root

    def _hashes(self, level: int, start: int, count: int) -> list[bytes]:
        out: list[bytes] = []
        while count:
            index, offset = divmod(start, TILE_WIDTH)
            data = self._cache.get((level, index))
            if data is None or len(data) < (offset + min(count, TILE_WIDTH - offset)) * 32:
                data = self._load(level, index) or b""
                self._cache[(level, index)] = data
            take = min(count, TILE_WIDTH - offset)
            if len(data) < (offset + take) * 32:
                raise TileMissing(f"tile {level}/{index} lacks hash {offset + take - 1}")
            out += _split32(data[offset * 32 : (offset + take) * 32])
            start, count = start + take, count - take
        return out

    def preload(self, tiles: dict[tuple[int, int], bytes]) -> None:
        self._cache.update(tiles)

    def complete(self, lo: int, height: int) -> bytes:
        """The root of the complete subtree of 2^height leaves starting at ``lo`` (memoised:
        verify asks for the roots of many checkpoints of one log, which share subtrees)."""
        root = self._roots.get((lo, height))
        if root is None:
            level, rest = divmod(height, TILE_HEIGHT)
            root = tile_root(self._hashes(level, lo >> (TILE_HEIGHT * level), 1 << rest))
            self._roots[(lo, height)] = root
        return root

    def __call__(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n <= 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and lo % n == 0:
            return self.complete(lo, n.bit_length() - 1)
        k = split(n)
        return node_hash(self(lo, lo + k), self(lo + k, hi))


def tiles_needed(build: Callable[[TileHashes], object]) -> set[tuple[int, int]]:
    """The (level, index) of every tile ``build`` reads: a dry run on full tiles of zeros (which
    tiles a proof reads depends on the sizes alone, not on the hashes), so a proof can fetch
    them all in one query."""
    seen: set[tuple[int, int]] = set()

    def load(level: int, index: int) -> bytes:
        seen.add((level, index))
        return bytes(32 * TILE_WIDTH)

    build(TileHashes(load))
    return seen
