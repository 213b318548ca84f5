"""The commit thread carries an OS-level name, so per-thread CPU figures can single it out."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from receiver.writer import name_os_thread


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux /proc only")
def test_the_os_sees_the_name() -> None:
    seen: list[str] = []

    def body() -> None:
        name_os_thread("oa-commit")
        seen.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == ["oa-commit"]
