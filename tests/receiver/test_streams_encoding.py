"""A stream batch's events are made by the engine (one JSON line per event in the batch query):
each line must equal what /api/events returns for the event (``store.search`` → ``row_to_api``),
for awkward values too — nested and non-JSON change sets, quotes, backslashes, control
characters, non-ASCII, an empty HTTP status — and the NDJSON body must be exactly those lines."""

from __future__ import annotations

import datetime as dt

import orjson

from receiver.filters import EventFilter
from receiver.model import AuditEvent, events_to_table
from receiver.store import streams_sql as q
from receiver.store.sql import Statement
from receiver.streams.batch import Batch

UTC = dt.timezone.utc


def _events() -> list[AuditEvent]:
    at = dt.datetime(2026, 12, 4, 10, 30, 5, 123456, tzinfo=UTC)
    odd = 'quote " backslash \\ slash / tab \t newline \n nul-ish \x01 é ü 日本 🙂 </script>'
    return [
        AuditEvent(
            id=f"00000000-0000-4000-8000-00000000000{i}",
            tenant_id="acme",
            user_id=odd if i == 1 else f"user-{i}",
            action="update",
            resource_type="document",
            event_name="audit.document.updated",
            created_at=at + dt.timedelta(seconds=i),
            received_at=at + dt.timedelta(seconds=i, microseconds=7),
            changes=[
                "",
                '{"title":{"from":"a\\"b","to":"日本"},"n":[1,2.5,null,true]}',
                "not json {",
                '{"deep":{"a":[{"b":"c\\u00e9"}]}}',
            ][i],
            http_status=[0, 404, 200, 0][i],
            reason=odd,
            user_agent="Mozilla/5.0 (X11; \\ Linux)",
            attributes={'k"ey': odd, "plain": "v"} if i != 2 else {},
        )
        for i in range(4)
    ]


def test_engine_made_lines_equal_the_api_events(store):
    store.insert(events_to_table(_events()))
    db = store.database
    store.execute(  # give the rows positions in one log, as the writer does when chaining
        Statement(
            f"INSERT INTO {db}.audit_events SELECT * REPLACE ('acme/test' AS chain_id,"
            " toUInt64(row_number() OVER (ORDER BY created_at) - 1) AS seq)"
            f" FROM (SELECT * FROM {db}.audit_events WHERE chain_id = '')",
            {},
        )
    )
    store.execute(Statement(f"DELETE FROM {db}.audit_events WHERE chain_id = ''", {}))
    table = store.query_table(q.next_batch(db, q.condition({}, ("*",)), {}, 100))
    batch = Batch.from_table("s", table)
    assert len(batch) == 4 and batch.ranges == {"acme/test": (0, 3)}
    api = {e["id"]: e for e in store.search(EventFilter(), 100)}
    assert len(api) == 4
    for event in batch.events:
        assert event == api[event["id"]]
    body = batch.ndjson()
    assert body.endswith(b"\n") and [orjson.loads(line) for line in body.splitlines()] == batch.events
    assert [e["id"] for e in batch.events] == sorted(api)  # index order


def test_a_probe_reads_positions_only_and_a_window_reads_one_log(store):
    store.insert(events_to_table(_events()))
    db = store.database
    store.execute(
        Statement(
            f"INSERT INTO {db}.audit_events SELECT * REPLACE ('acme/test' AS chain_id,"
            " toUInt64(row_number() OVER (ORDER BY created_at) - 1) AS seq)"
            f" FROM (SELECT * FROM {db}.audit_events WHERE chain_id = '')",
            {},
        )
    )
    cond = q.condition({}, ("*",))
    probe = store.query_table(q.next_batch(db, cond, {"acme/test": 1}, 100, probe=True))
    assert probe.column_names == ["log", "idx"] and probe.column("idx").to_pylist() == [1, 2, 3]
    window = store.query_table(q.next_batch(db, cond, {"acme/test": 1}, 2, window=("acme/test", 2)))
    assert window.column("idx").to_pylist() == [1, 2]


def test_streams_sharing_a_read_compress_its_body_once_even_when_they_ask_at_once(monkeypatch):
    """Siblings wake on the same shared read and ask for the gzip body together: one compresses,
    the other waits for that body (each compressing it was half the streams' send CPU)."""
    import threading
    import time

    import pyarrow as pa
    from isal import igzip

    from receiver.streams import batch as batch_module

    calls = []
    real = igzip.compress

    def counted(data, **kwargs):  # a spy on the real compressor, slowed so both threads overlap
        calls.append(1)
        time.sleep(0.2)
        return real(data, **kwargs)

    monkeypatch.setattr(batch_module.igzip, "compress", counted)
    table = pa.table({"line": ['{"id":"a"}\n', '{"id":"b"}\n'], "log": ["l", "l"], "idx": [0, 1]})
    bodies: list[bytes] = []

    def send(stream: str) -> None:
        bodies.append(Batch.from_table(stream, table).gzipped())

    threads = [threading.Thread(target=send, args=(name,)) for name in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert bodies[0] is bodies[1]
    assert igzip.decompress(bodies[0]) == b'{"id":"a"}\n{"id":"b"}\n'
