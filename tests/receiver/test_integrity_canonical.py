"""canonical(): the reference, the column-wise twin and the SQL expression give the same bytes,
and the chain assigned by the writer is gap-free, linked and survives a new Chainer (restart)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.integrity.canonical import PREFIX, canonical, canonical_column, event_digest, event_digests
from receiver.integrity.chain import GENESIS, Chainer, chain_hashes
from receiver.integrity.verify import verify_chain
from receiver.model import AuditEvent, events_to_table
from receiver.store.integrity_sql import canonical_sql
from receiver.store.sql import Statement

UTC = dt.timezone.utc
WHEN = dt.datetime(2026, 11, 26, 6, 46, 47, 494864, tzinfo=UTC)


def event(**overrides: object) -> AuditEvent:
    values: dict[str, object] = dict(
        id="6f1c2b1e-8d8a-4c1e-9a53-0d6c1f0a9b10",
        tenant_id="acme",
        user_id="alice",
        action="update",
        resource_type="invoice",
        event_name="audit.invoice.update",
        created_at=WHEN,
        received_at=WHEN + dt.timedelta(seconds=1),
        retain_until=dt.date(2027, 11, 26),
        attributes={"b": "2", "a": "1"},
    )
    values.update(overrides)
    return AuditEvent(**values)  # type: ignore[arg-type]


def chained(events: list[AuditEvent], chain_id: str = "acme/r1") -> pa.Table:
    table = events_to_table(events)
    return table.append_column("chain_id", pa.array([chain_id] * len(events))).append_column(
        "seq", pa.array(range(1, len(events) + 1), pa.uint64())
    )


def test_golden_bytes_of_version_1():
    row = chained([event()]).to_pylist()[0]
    expected = (
        b"otel-audit/1\n"
        b"7:acme/r1"
        b"1:1"
        b"36:6f1c2b1e-8d8a-4c1e-9a53-0d6c1f0a9b10"
        b"4:acme"
        b"5:alice"
        b"4:user"
        b"6:update"
        b"7:success"
        b"7:invoice"
        b"0:"
        b"20:audit.invoice.update"
        b"0:"
        b"0:"
        b"0:"
        b"16:1795675607494864"
        b"16:1795675608494864"
        b"0:"
        b"0:"
        b"0:"
        b"0:"
        b"0:"
        b"0:"
        b"1:0"
        b"0:"
        b"12:1:b1:21:a1:1"
        b"10:2027-11-26"
    )
    assert canonical(row) == expected
    assert canonical_column(chained([event()])).to_pylist() == [expected]
    digest = hashlib.sha256(expected).digest()
    assert event_digest(row) == digest
    # the chain's first link, pinned: a change of encoding must be a new version
    assert list(chain_hashes(GENESIS, [digest]))[0] == hashlib.sha256(bytes(32) + digest).digest()
    assert (
        list(chain_hashes(GENESIS, [digest]))[0].hex()
        == "e5039780f08c610c81915d26df8a51ee8eb3e5b6d681bbaea226941a763c01d2"
    )


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(text, text, st.dictionaries(text, text, max_size=5), st.integers(0, 599), text),
        min_size=1,
        max_size=8,
    ),
    cut=st.integers(0, 3),
)
def test_column_wise_equals_reference(rows, cut):
    events = [
        event(
            id=str(uuid.uuid4()),
            user_id=user,
            changes=changes,
            attributes=attrs,
            http_status=status,
            reason="é:1:" + reason,
        )
        for user, changes, attrs, status, reason in rows
    ]
    table = chained(events)
    table = table.slice(min(cut, table.num_rows - 1))  # slices keep map offsets honest
    assert canonical_column(table).to_pylist() == [canonical(r) for r in table.to_pylist()]
    assert all(c.startswith(PREFIX) for c in canonical_column(table).to_pylist())
    assert event_digests(table) == [event_digest(r) for r in table.to_pylist()]


def test_column_wise_long_fields_empty_maps_and_wide_strings():
    """Past the header lookup (a field over 64 KiB), rows without attributes, and large_string
    columns (what some readers hand back) encode like the reference."""
    long_reason = "x" * 70_000
    events = [
        event(id=str(uuid.uuid4()), reason=long_reason, attributes={"k": "v" * 70_000}),
        event(id=str(uuid.uuid4()), attributes={}),
    ]
    table = chained(events)
    expected = [canonical(r) for r in table.to_pylist()]
    assert canonical_column(table).to_pylist() == expected
    empty = chained([event(id=str(uuid.uuid4()), attributes={}) for _ in range(3)])
    assert canonical_column(empty).to_pylist() == [canonical(r) for r in empty.to_pylist()]
    wide = table.set_column(
        table.schema.get_field_index("user_id"), "user_id", table.column("user_id").cast(pa.large_string())
    )
    assert canonical_column(wide).to_pylist() == expected
    assert event_digests(wide) == [event_digest(r) for r in table.to_pylist()]


def test_engine_expression_equals_reference(store):
    events = [
        event(
            id=str(uuid.uuid4()),
            user_id=f"ü-{i}",
            attributes={"z": "1", "é": "x:y", "": ""},
            reason="a\tb\nc",
        )
        for i in range(5)
    ]
    events.append(event(id=str(uuid.uuid4()), attributes={}, changes='{"a": {"old": "\\n", "new": null}}'))
    plain = chained(events)
    # on the batch about to be stored (what the writer uses) ...
    assert store.event_digests(plain) == [event_digest(r) for r in plain.to_pylist()]
    # ... and on stored rows (what an engine-side check would use)
    table, _ = Chainer(_NoHeads(), "r1").assign(events_to_table(events))
    assert table.column("hash").to_pylist() == list(chain_hashes(GENESIS, event_digests(table)))
    store.insert(table)
    rows = store._query_arrow(
        Statement(
            f"SELECT hex(SHA256(concat(prev_hash, SHA256({canonical_sql()})))) AS engine_hash, hex(hash) AS stored"
            f" FROM {store.database}.audit_events ORDER BY seq"
        )
    ).to_pylist()
    assert len(rows) == 6
    assert all(r["engine_hash"] == r["stored"] for r in rows)


class _NoHeads:
    def chain_heads(self, instance_id: str) -> dict:
        return {}


def test_chainer_assigns_gap_free_linked_chains_per_tenant_and_recovers_heads(store):
    chainer = Chainer(store, "r1")
    batch = [event(id=str(uuid.uuid4()), tenant_id=("acme" if i % 3 else "globex")) for i in range(30)]
    table, heads = chainer.assign(events_to_table(batch))
    store.insert(table)
    chainer.advance(heads)
    assert heads["acme/r1"].seq == 20 and heads["globex/r1"].seq == 10
    # a new Chainer (a restarted receiver) continues from the store, not from 1
    again = Chainer(store, "r1")
    table2, heads2 = again.assign(events_to_table([event(id=str(uuid.uuid4()))]))
    assert table2.column("seq").to_pylist() == [21]
    assert table2.column("prev_hash")[0].as_py() == heads["acme/r1"].hash
    store.insert(table2)
    # a second receiver instance writes its own chain of the same tenant
    other, heads3 = Chainer(store, "r2").assign(events_to_table([event(id=str(uuid.uuid4()))]))
    store.insert(other)
    assert other.column("chain_id").to_pylist() == ["acme/r2"] and heads3["acme/r2"].seq == 1
    acme = [r for r in table.to_pylist() if r["tenant_id"] == "acme"] + table2.to_pylist()
    assert [r["seq"] for r in acme] == list(range(1, 22))
    assert [r["hash"] for r in acme] == list(chain_hashes(GENESIS, [event_digest(r) for r in acme]))
    report = verify_chain("acme/r1", "acme", store.iter_chain("acme/r1", 1, 21), [], None)
    assert report.damage is None and report.events == 21
