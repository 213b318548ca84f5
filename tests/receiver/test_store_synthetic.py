"""The benchmarks' engine-generated data set: the asked-for size, spread and shape."""

from __future__ import annotations

import datetime as dt

from receiver.filters import EventFilter
from receiver.store.synthetic import SyntheticSpec


def test_synthetic_events_fill_the_store_as_specified(store):
    spec = SyntheticSpec(rows=20_000, tenants=5, days=30)
    store.generate_synthetic(spec, chunk_rows=7_000)
    assert store.count(EventFilter()) == 20_000
    assert sorted(store.tenants(EventFilter())) == [f"tenant-0{i}" for i in range(5)]
    assert store.count(EventFilter(tenant="tenant-03")) == 4_000
    before = store.count(EventFilter(until=spec.end - dt.timedelta(days=30)))
    after = store.count(EventFilter(since=spec.end))
    assert before == 0 and after == 0
    rows = store.search(EventFilter(q="refund"), 5)
    assert rows and all("refund" in r["reason"] for r in rows)
    again = store.search(EventFilter(tenant="tenant-01"), 1000)
    assert len({r["id"] for r in again}) == len(again) == 1000
