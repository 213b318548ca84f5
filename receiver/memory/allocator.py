"""Allocator settings for the ``serve`` process, made once before its threads start, and the
heap trim the commit thread runs after each store commit (measured in docs/BENCHMARKS.md,
"Commit path and receiver memory").

- **Arrow's pool.** pyarrow allocates from mimalloc by default, which keeps freed pages for
  reuse: every request's table, the journal's IPC buffers and each group commit's columns pass
  through it, and the receiver kept ~130 MB more RSS than with the system allocator, at no
  measurable CPU difference. The system pool returns what ``free`` gives back.
- **glibc arenas.** The engine's and the server's threads each get a malloc arena (up to 8 per
  core); two arenas bound the fragmentation those leave behind.
- **Trim.** After a commit the batch's tables are gone; ``malloc_trim(0)`` hands the free pages
  in the middle of the heaps back to the kernel. A call measured 2-14 ms, so it runs at most once
  per :data:`TRIM_INTERVAL` (store-mode group commits come every few ms under load).

The environment can still decide: ``ARROW_DEFAULT_MEMORY_POOL`` and ``MALLOC_ARENA_MAX`` set by
an operator are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time

import pyarrow as pa

log = logging.getLogger("otel_audit.receiver")

#: glibc's mallopt parameter number for the arena cap (malloc.h: M_ARENA_MAX)
_M_ARENA_MAX = -8
ARENA_MAX = 2
#: seconds between two heap trims at most
TRIM_INTERVAL = 1.0


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    # musl and other libcs have no mallopt/malloc_trim: the settings are glibc's
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


_LIBC = _libc()


def configure() -> dict[str, str]:
    """Apply the settings (call once, early in ``serve``); returns what was set, for the log."""
    applied: dict[str, str] = {}
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())
        applied["arrow_pool"] = "system"
    if _LIBC is not None and "MALLOC_ARENA_MAX" not in os.environ:
        if _LIBC.mallopt(ctypes.c_int(_M_ARENA_MAX), ctypes.c_int(ARENA_MAX)) == 1:
            applied["malloc_arena_max"] = str(ARENA_MAX)
    return applied


_last_trim = 0.0
_trim_lock = threading.Lock()


def trim() -> bool:
    """Give the heaps' free pages back to the kernel (glibc; a no-op elsewhere), unless that
    was done less than :data:`TRIM_INTERVAL` ago. Returns whether it ran."""
    global _last_trim
    if _LIBC is None:
        return False
    now = time.monotonic()
    with _trim_lock:
        if now - _last_trim < TRIM_INTERVAL:
            return False
        _last_trim = now
    _LIBC.malloc_trim(ctypes.c_size_t(0))
    return True
