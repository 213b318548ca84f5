"""The on-disk spool: audit events the exporter could not deliver are kept on local disk and
replayed, in order, when the receiver is back — also after the application restarts.

:class:`SpoolingExporter` wraps the OTLP exporter (``exporter.build_exporter``). A batch goes
straight to the receiver while the spool is empty; when that fails (receiver down, network error,
retries exhausted) the batch is written to the spool as one segment file (written to a temporary
name, fsynced, renamed: a crash never leaves half a batch). While the spool holds anything, new
batches are appended behind it instead of being sent, so events arrive in emission order. A
replay thread sends the oldest segment, deletes it only once the receiver acknowledged it, and
backs off while the receiver stays away. Segments are retried until delivered, never dropped.

The spool is bounded (``max_bytes``): when full, new batches are dropped and counted, with one
clear log line per ``_FULL_LOG_INTERVAL_S``. Several processes may share a directory: each takes
its own ``slot-N`` (an ``flock``), and adopts the segments of slots no live process holds.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from otel_audit.spool_codec import decode_batch, encode_batch

log = logging.getLogger("otel_audit.spool")

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_SUFFIX = ".batch"
_FULL_LOG_INTERVAL_S = 10.0
_MIN_BACKOFF_S = 0.25
_MAX_BACKOFF_S = 10.0


@dataclass
class SpoolStats:
    spooled_events: int = 0
    replayed_events: int = 0
    dropped_events: int = 0
    pending_segments: int = 0
    pending_bytes: int = 0


def _private(path: str, flags: int) -> int:
    """``open`` opener: new files are 0600 whatever the umask."""
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return fd


class DiskSpool:
    """Segment files ``<seq>.batch`` in a slot directory; the oldest sequence number first."""

    def __init__(self, root: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)  # spooled events are personal data: owner-only, whatever the umask
        self._lock = threading.Lock()
        self.dir, self._slot_lock = self._take_slot()
        for stale in self.dir.glob(".tmp-*"):
            stale.unlink(missing_ok=True)  # a batch whose write a crash interrupted was never spooled
        self._segments: list[Path] = sorted(self.dir.glob(f"*{_SUFFIX}"))
        self._bytes = sum(p.stat().st_size for p in self._segments)
        self._next = int(self._segments[-1].stem) + 1 if self._segments else 1

    def _take_slot(self) -> tuple[Path, IO[bytes]]:
        n = 0
        while True:
            slot = self.root / f"slot-{n}"
            slot.mkdir(mode=0o700, exist_ok=True)
            slot.chmod(0o700)
            handle = open(slot / ".lock", "ab", opener=_private)  # noqa: SIM115 - held for the spool's lifetime
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                handle.close()
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                n += 1
                continue
            return slot, handle

    def adopt_orphans(self) -> int:
        """Move the segments of slots no process holds (a worker that did not come back) into ours."""
        moved = 0
        for slot in sorted(self.root.glob("slot-*")):
            if slot == self.dir or not any(slot.glob(f"*{_SUFFIX}")):
                continue
            with open(slot / ".lock", "ab") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live process owns it
                for segment in sorted(slot.glob(f"*{_SUFFIX}")):
                    with self._lock:
                        target = self.dir / f"{self._next:020d}{_SUFFIX}"
                        self._next += 1
                        os.replace(segment, target)
                        self._segments.append(target)
                        self._bytes += target.stat().st_size
                    moved += 1
        return moved

    def __len__(self) -> int:
        with self._lock:
            return len(self._segments)

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def append(self, data: bytes) -> bool:
        """Write one segment durably; False (nothing written) when it does not fit."""
        with self._lock:
            if self._bytes + len(data) > self.max_bytes:
                return False
            seq = self._next
            self._next += 1
            final = self.dir / f"{seq:020d}{_SUFFIX}"
            tmp = self.dir / f".tmp-{seq:020d}"
            with open(tmp, "wb", opener=_private) as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
            _fsync_dir(self.dir)
            self._segments.append(final)
            self._bytes += len(data)
            return True

    def oldest(self) -> tuple[Path, bytes] | None:
        with self._lock:
            if not self._segments:
                return None
            path = self._segments[0]
        return path, path.read_bytes()

    def remove(self, path: Path) -> None:
        with self._lock:
            size = path.stat().st_size
            path.unlink()
            self._segments.remove(path)
            self._bytes -= size

    def quarantine(self, path: Path) -> Path:
        """A segment that cannot be decoded (disk damage) is set aside, not deleted."""
        with self._lock:
            size = path.stat().st_size
            target = path.with_suffix(".corrupt")
            os.replace(path, target)
            self._segments.remove(path)
            self._bytes -= size
            return target

    def close(self) -> None:
        self._slot_lock.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolingExporter(LogRecordExporter):
    """Deliver through ``inner``; what it cannot deliver now goes to the spool and is replayed."""

    def __init__(
        self,
        inner: LogRecordExporter,
        directory: str | os.PathLike[str],
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        max_backoff_s: float = _MAX_BACKOFF_S,
    ) -> None:
        self._inner = inner
        self.spool = DiskSpool(directory, max_bytes)
        self.stats = SpoolStats()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._max_backoff = max_backoff_s
        self._dropped_unlogged = 0
        self._last_full_log = 0.0
        self.spool.adopt_orphans()
        if len(self.spool):
            log.warning(
                "otel_audit: %d spooled batch(es) in %s from an earlier run; replaying them",
                len(self.spool),
                self.spool.dir,
            )
        self._thread = threading.Thread(target=self._replay_loop, name="otel-audit-spool", daemon=True)
        self._thread.start()

    @property
    def inner(self) -> LogRecordExporter:
        """The exporter that talks to the receiver."""
        return self._inner

    # -- LogRecordExporter -------------------------------------------------------------
    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if not batch:
            return LogRecordExportResult.SUCCESS
        if not len(self.spool) and self._send(batch):
            return LogRecordExportResult.SUCCESS
        return self._to_spool(batch)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Replay the spool now; True when it is empty."""
        return self._drain(time.monotonic() + timeout_millis / 1000)

    def shutdown(self) -> None:
        """One last replay (bounded by the exporter's own timeout); what is left stays on disk."""
        self._stopped.set()
        self._wake.set()
        self._thread.join(60)
        if len(self.spool):
            self._drain(time.monotonic() + 30.0)  # stops at the first failure: only waits on a live receiver
        if len(self.spool):
            log.warning(
                "otel_audit: %d batch(es) of audit events stay spooled in %s; they are delivered at the next start",
                len(self.spool),
                self.spool.dir,
            )
        self._inner.shutdown()
        self.spool.close()

    # -- internals ---------------------------------------------------------------------
    def _send(self, batch: Sequence[ReadableLogRecord]) -> bool:
        with self._send_lock:
            try:
                return self._inner.export(batch) == LogRecordExportResult.SUCCESS
            except Exception:  # noqa: BLE001 - any failure to deliver means: keep it
                return False

    def _to_spool(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        try:
            stored = self.spool.append(encode_batch(batch))
        except OSError as exc:
            stored = False
            log.error("otel_audit: cannot write the spool in %s: %s", self.spool.dir, exc)
        if stored:
            self.stats.spooled_events += len(batch)
            self._wake.set()
            return LogRecordExportResult.SUCCESS
        self.stats.dropped_events += len(batch)
        self._dropped_unlogged += len(batch)
        now = time.monotonic()
        if now - self._last_full_log >= _FULL_LOG_INTERVAL_S:
            log.error(
                "otel_audit: spool full (%d of %d bytes in %s, receiver unreachable): dropped %d audit event(s)",
                self.spool.size_bytes,
                self.spool.max_bytes,
                self.spool.dir,
                self._dropped_unlogged,
            )
            self._last_full_log = now
            self._dropped_unlogged = 0
        return LogRecordExportResult.FAILURE

    def _replay_one(self) -> bool | None:
        """Send the oldest segment: True delivered, False not now, None spool empty."""
        oldest = self.spool.oldest()
        if oldest is None:
            return None
        path, data = oldest
        try:
            batch = decode_batch(data)
        except (ValueError, KeyError, TypeError) as exc:
            target = self.spool.quarantine(path)
            log.error("otel_audit: spool segment %s is damaged (%s); set aside as %s", path, exc, target)
            return True
        if not self._send(batch):
            return False
        self.spool.remove(path)
        self.stats.replayed_events += len(batch)
        return True

    def _drain(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            outcome = self._replay_one()
            if outcome is None:
                return True
            if outcome is False:
                return False
        return not len(self.spool)

    def _replay_loop(self) -> None:
        backoff = _MIN_BACKOFF_S
        while not self._stopped.is_set():
            if not len(self.spool):
                self._wake.wait()
                self._wake.clear()
                continue
            outcome = self._replay_one()
            if outcome is False:
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                self.spool.adopt_orphans()
            else:
                backoff = _MIN_BACKOFF_S

    def snapshot(self) -> SpoolStats:
        return SpoolStats(
            spooled_events=self.stats.spooled_events,
            replayed_events=self.stats.replayed_events,
            dropped_events=self.stats.dropped_events,
            pending_segments=len(self.spool),
            pending_bytes=self.spool.size_bytes,
        )
