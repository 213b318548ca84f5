"""receiver.writer.keep_mask (the column-wise dedupe of a group commit) against the per-row loop
it replaced, on random batches with repeats, stored ids and expired rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.writer import keep_mask

_TENANTS = ["acme", "globex", "initech"]
_IDS = [f"00000000-0000-4000-8000-{i:012x}" for i in range(12)]


def reference(
    tenants: list[str], ids: list[str], stored: set[tuple[str, str]], gone: list[bool]
) -> list[bool]:
    """The loop StoreCommitter.commit ran before: an expired row is skipped (and does not count
    as seen), then a (tenant, id) is kept the first time it is neither stored nor seen."""
    seen = set(stored)
    out = []
    for key, expired in zip(zip(tenants, ids, strict=True), gone, strict=True):
        if expired:
            out.append(False)
            continue
        fresh = key not in seen
        out.append(fresh)
        if fresh:
            seen.add(key)
    return out


rows = st.lists(st.tuples(st.sampled_from(_TENANTS), st.sampled_from(_IDS), st.booleans()), max_size=60)
stored_pairs = st.sets(st.tuples(st.sampled_from(_TENANTS), st.sampled_from(_IDS)), max_size=10)


@settings(max_examples=150, deadline=None)
@given(rows, stored_pairs, st.floats(0, 1))
def test_same_rows_as_the_per_row_loop(
    batch: list[tuple[str, str, bool]], stored: set, expiry: float
) -> None:
    tenants = [t for t, _, _ in batch]
    ids = [i for _, i, _ in batch]
    gone = [flag and expiry > 0.5 for _, _, flag in batch]
    got = keep_mask(
        pa.array(tenants, pa.string()), pa.array(ids, pa.string()), stored, np.array(gone, dtype=bool)
    )
    assert got.tolist() == reference(tenants, ids, stored, gone)


def test_a_repeat_after_an_expired_copy_is_kept() -> None:
    tenants = pa.array(["acme", "acme", "globex"])
    ids = pa.array([_IDS[0], _IDS[0], _IDS[0]])
    got = keep_mask(tenants, ids, {("globex", _IDS[0])}, np.array([True, False, False]))
    assert got.tolist() == [False, True, False]
