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
from receiver.integrity.chain import Chainer
from receiver.integrity.merkle import root_of
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


def chained(events: list[AuditEvent], chain_id: str = "otel-audit/acme/r1") -> pa.Table:
    table = events_to_table(events)
    return table.append_column("chain_id", pa.array([chain_id] * len(events))).append_column(
        "seq", pa.array(range(len(events)), pa.uint64())
    )


def test_golden_bytes_of_version_2():
    row = chained([event()]).to_pylist()[0]
    expected = (
        b"otel-audit/2\n"
        b"18:otel-audit/acme/r1"
        b"1:0"
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
    digest = hashlib.sha256(b"\x00" + expected).digest()  # the RFC 9162 leaf hash
    assert event_digest(row) == digest
    # pinned (docs/INTEGRITY.md shows it): a change of encoding must be a new version
    assert digest.hex() == "b8a62611bff6351b237b172c00f3866f4018bce1ff7812d7b7d3bc0896915396"


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
    # a group commit's table has one chunk per request and is hashed a slice at a time
    several = pa.concat_tables([table, table.slice(1)])
    assert event_digests(several, slice_rows=3) == [event_digest(r) for r in several.to_pylist()]


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
    assert table.column("hash").to_pylist() == event_digests(table)
    store.insert(table)
    rows = store._query_arrow(
        Statement(
            f"SELECT hex(SHA256(concat('\\0', {canonical_sql()}))) AS engine_hash, hex(hash) AS stored,"
            " hex(prev_hash) AS prev"
            f" FROM {store.database}.audit_events ORDER BY seq"
        )
    ).to_pylist()
    assert len(rows) == 6
    assert all(r["engine_hash"] == r["stored"] for r in rows)
    assert all(r["prev"] == "00" * 32 for r in rows)  # the retired v1 column: its default


class _NoHeads:
    def last_tiles(self, instance_id=None, origin=None) -> list:
        return []

    def log_sizes(self, instance_id: str) -> dict:
        return {}


def test_chainer_assigns_gap_free_leaves_per_tenant_and_recovers_the_tree(store):
    chainer = Chainer(store, "r1")
    batch = [event(id=str(uuid.uuid4()), tenant_id=("acme" if i % 3 else "globex")) for i in range(30)]
    table, pending = chainer.assign(events_to_table(batch))
    store.insert(table)
    chainer.advance(pending)
    assert pending.edges["otel-audit/acme/r1"].size == 20 and pending.edges["otel-audit/globex/r1"].size == 10
    # a new Chainer (a restarted receiver) continues from the store, not from 0
    again = Chainer(store, "r1")
    table2, pending2 = again.assign(events_to_table([event(id=str(uuid.uuid4()))]))
    assert table2.column("seq").to_pylist() == [20]
    store.insert(table2)
    again.advance(pending2)
    # a second receiver instance writes its own log of the same tenant
    other, pending3 = Chainer(store, "r2").assign(events_to_table([event(id=str(uuid.uuid4()))]))
    assert other.column("chain_id").to_pylist() == ["otel-audit/acme/r2"] and other.column(
        "seq"
    ).to_pylist() == [0]
    acme = [r for r in table.to_pylist() if r["tenant_id"] == "acme"] + table2.to_pylist()
    assert [r["seq"] for r in acme] == list(range(21))
    leaves = [event_digest(r) for r in acme]
    assert [r["hash"] for r in acme] == leaves
    from receiver.integrity.checkpoints import tree_head

    assert tree_head(store, "otel-audit/acme/r1") == (21, root_of(leaves))
