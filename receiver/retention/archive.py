"""The archive: Parquet (zstd) files per tenant per day with a manifest, on a local directory or
S3-compatible object storage (through pyarrow's filesystems).

Layout (Hive-style, so ClickHouse, DuckDB or Spark can read it as a partitioned dataset)::

    <root>/tenant=<tenant, percent-encoded>/date=YYYY-MM-DD/events-0001.parquet
                                                          /manifest.json

A day has one file per archive run that found rows of that day (usually one; a late event
arriving after its day was archived becomes ``events-0002.parquet``). The manifest lists every
file with its row count, time range, chain sequence range and SHA-256; it is replaced
atomically (write to a temporary name, then rename), and only after the file it adds has been
re-read and verified, so a file not in the manifest was never counted as archived.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

MANIFEST = "manifest.json"
FORMAT = "otel-audit-archive/1"
_TENANT_PREFIX = "tenant="
_DAY_PREFIX = "date="


class ArchiveError(RuntimeError):
    """The archive cannot be written or does not verify."""


@dataclass
class ArchiveFile:
    name: str
    rows: int
    bytes: int
    sha256: str
    first_created_at: str
    last_created_at: str
    archived_at: str
    #: tamper-evidence chains of the rows: chain_id → [first seq, last seq] in this file
    chains: dict[str, list[int]] = field(default_factory=dict)
    #: the signed checkpoints that sealed those chains before the rows left the store
    checkpoints: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DayManifest:
    tenant_id: str
    day: str
    files: list[ArchiveFile] = field(default_factory=list)
    format: str = FORMAT

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def chains(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for f in self.files:
            for chain, (lo, hi) in f.chains.items():
                have = out.get(chain)
                out[chain] = [min(have[0], lo), max(have[1], hi)] if have else [lo, hi]
        return out

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "format": self.format,
            "tenant_id": self.tenant_id,
            "day": self.day,
            "rows": self.rows,
            "first_created_at": min((f.first_created_at for f in self.files), default=None),
            "last_created_at": max((f.last_created_at for f in self.files), default=None),
            "chains": self.chains(),
            "files": [asdict(f) for f in self.files],
        }
        return json.dumps(doc, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DayManifest:
        doc = json.loads(text)
        return cls(
            tenant_id=doc["tenant_id"],
            day=doc["day"],
            files=[ArchiveFile(**f) for f in doc["files"]],
            format=doc.get("format", FORMAT),
        )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


class ArchiveTarget:
    """The archive root on a pyarrow filesystem: a local directory or ``s3://bucket/prefix``."""

    def __init__(self, location: str) -> None:
        self.location = location
        if "://" in location and not location.startswith("file://"):
            self.fs, root = pafs.FileSystem.from_uri(location)
            self.local = False
        else:
            path = Path(location.removeprefix("file://")).resolve()
            self.fs, root = pafs.LocalFileSystem(), str(path)
            self.local = True
        self.root = root.rstrip("/")

    # -- paths --------------------------------------------------------------------------
    def tenant_dir(self, tenant: str) -> str:
        return f"{self.root}/{_TENANT_PREFIX}{quote(tenant, safe='')}"

    def day_dir(self, tenant: str, day: dt.date) -> str:
        return f"{self.tenant_dir(tenant)}/{_DAY_PREFIX}{day.isoformat()}"

    def _children(self, path: str) -> list[pafs.FileInfo]:
        info = self.fs.get_file_info(path)
        if info.type != pafs.FileType.Directory:
            return []
        return self.fs.get_file_info(pafs.FileSelector(path, recursive=False))

    def tenants(self) -> list[str]:
        return sorted(
            unquote(i.base_name[len(_TENANT_PREFIX) :])
            for i in self._children(self.root)
            if i.type == pafs.FileType.Directory and i.base_name.startswith(_TENANT_PREFIX)
        )

    def days(self, tenant: str) -> list[dt.date]:
        out = []
        for info in self._children(self.tenant_dir(tenant)):
            if info.type == pafs.FileType.Directory and info.base_name.startswith(_DAY_PREFIX):
                try:
                    out.append(dt.date.fromisoformat(info.base_name[len(_DAY_PREFIX) :]))
                except ValueError:
                    continue
        return sorted(out)

    # -- bytes --------------------------------------------------------------------------
    def read_bytes(self, path: str) -> bytes:
        with self.fs.open_input_stream(path) as stream:
            return stream.read()

    def write_atomic(self, path: str, data: bytes) -> None:
        """Write ``path`` so that it is either absent, the old content, or all of ``data``."""
        tmp = path.rsplit("/", 1)[0] + "/.tmp-" + path.rsplit("/", 1)[1]
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(tmp) as out:
            out.write(data)
        if self.local:
            _fsync(tmp)
        self.fs.move(tmp, path)
        if self.local:
            _fsync(path.rsplit("/", 1)[0])

    # -- manifests and files --------------------------------------------------------------
    def manifest(self, tenant: str, day: dt.date) -> DayManifest | None:
        path = f"{self.day_dir(tenant, day)}/{MANIFEST}"
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        return DayManifest.from_json(self.read_bytes(path).decode())

    def write_manifest(self, manifest: DayManifest) -> None:
        day = dt.date.fromisoformat(manifest.day)
        self.write_atomic(f"{self.day_dir(manifest.tenant_id, day)}/{MANIFEST}", manifest.to_json().encode())

    def read_file(self, tenant: str, day: dt.date, entry: ArchiveFile) -> pa.Table:
        """One archived file, checked against its manifest entry (hash, then row count)."""
        data = self.read_bytes(f"{self.day_dir(tenant, day)}/{entry.name}")
        digest = sha256_hex(data)
        if digest != entry.sha256:
            raise ArchiveError(
                f"{tenant} {day} {entry.name}: SHA-256 {digest} does not match the manifest's {entry.sha256}"
            )
        table = pq.read_table(io.BytesIO(data))
        if table.num_rows != entry.rows:
            raise ArchiveError(
                f"{tenant} {day} {entry.name}: {table.num_rows} rows, manifest says {entry.rows}"
            )
        return table

    def archived_ids(self, tenant: str, day: dt.date, manifest: DayManifest | None) -> set[str]:
        ids: set[str] = set()
        for entry in manifest.files if manifest else ():
            data = self.read_bytes(f"{self.day_dir(tenant, day)}/{entry.name}")
            ids.update(
                str(v) for v in pq.read_table(io.BytesIO(data), columns=["id"]).column("id").to_pylist()
            )
        return ids

    def delete_day(self, tenant: str, day: dt.date) -> None:
        path = self.day_dir(tenant, day)
        if self.fs.get_file_info(path).type == pafs.FileType.Directory:
            self.fs.delete_dir(path)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
