"""receiver/memory/allocator.py: serve's allocator settings, in a fresh process each (they are
process-wide)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_PROBE = (
    "import json, pyarrow as pa\n"
    "from receiver.memory.allocator import configure, trim\n"
    "applied = configure()\n"
    "t = pa.table({'x': pa.array(range(100000))}); del t\n"
    "trim()\n"
    "print(json.dumps({'applied': applied, 'pool': pa.default_memory_pool().backend_name}))\n"
)


def _probe(**env: str) -> dict:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("ARROW_DEFAULT_MEMORY_POOL", "MALLOC_ARENA_MAX")
    }
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_serve_uses_the_system_pool_and_two_arenas() -> None:
    got = _probe()
    assert got["pool"] == "system"
    assert got["applied"] == {"arrow_pool": "system", "malloc_arena_max": "2"}


def test_an_operators_environment_wins() -> None:
    got = _probe(ARROW_DEFAULT_MEMORY_POOL="mimalloc", MALLOC_ARENA_MAX="4")
    assert got["pool"] == "mimalloc"
    assert got["applied"] == {}


def test_trim_runs_at_most_once_per_interval() -> None:
    from receiver.memory import allocator

    allocator._last_trim = 0.0
    assert allocator.trim() is True
    assert allocator.trim() is False  # a burst of store-mode commits trims once
    allocator._last_trim -= allocator.TRIM_INTERVAL
    assert allocator.trim() is True
