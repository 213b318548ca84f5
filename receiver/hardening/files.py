"""Store files are personal data: directories 0700 and files 0600, whatever the umask."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("otel_audit.receiver")

#: the serve process's umask: everything it (and the embedded engine) creates is owner-only
PRIVATE_UMASK = 0o077


def set_private_umask() -> int:
    """Owner-only umask for this process; returns the previous one."""
    return os.umask(PRIVATE_UMASK)


def make_private(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (a directory) if needed and make it and everything under it owner-only
    (directories 0700, files 0600: group/other bits cleared, so existing data is tightened too)."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    _tighten(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            _tighten(Path(dirpath) / name)
    return root


def _tighten(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            return
        if mode & 0o077:
            path.chmod(stat.S_IMODE(mode) & 0o700)
    except FileNotFoundError:  # a part the engine merged away meanwhile
        pass
    except OSError as exc:  # not ours, or a read-only file system
        log.warning("cannot restrict the mode of %s: %s", path, exc)
