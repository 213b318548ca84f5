"""The calling thread's name as the OS shows it (``/proc/<pid>/task/*/comm``), so that per-thread
CPU (bench.ingest's breakdown, top -H) tells the batching worker and the gRPC handlers apart from
the other Python threads. Linux only; elsewhere a no-op."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_PR_SET_NAME = 15


def name_os_thread(name: str) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):  # no libc to call: the name is only a convenience
        pass
