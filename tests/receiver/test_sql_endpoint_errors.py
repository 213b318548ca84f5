"""The SQL endpoint's answers to bad transport input and failures (issue 13 items 5, 8, 9):
a ``query_id`` that cannot travel in a header is a 400, a store outage names a reference id
and never the store's paths, a limit hit mid-answer is an error the client sees, and a
client that goes away mid-answer gives its session back."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import start_receiver
from test_sql_endpoint import ADMIN, _events, client_for

from receiver.model import events_to_table
from receiver.server import Receiver
from receiver.store.chdb_store import ChdbStore
from receiver.store.restricted import _engine_error


@pytest.fixture
def sql_receiver(store: ChdbStore) -> Iterator[Receiver]:
    store.insert(events_to_table(_events()))
    receiver = start_receiver(
        store,
        sql_endpoint={
            "listen": "127.0.0.1:0",
            "users": [{"user": ADMIN[0], "password": ADMIN[1], "tenants": ["*"]}],
            "max_execution_time": 10,
            "max_result_rows": 10_000,
        },
    )
    yield receiver
    receiver.stop_listeners()


@pytest.mark.parametrize(
    "query_id", ["q\r\nX-Injected: yes", "q\nline", "запрос-1", "q-\U0001f600", "x" * 300]
)
def test_a_query_id_that_cannot_be_a_header_is_400(sql_receiver, query_id):
    url = f"http://127.0.0.1:{sql_receiver.sql_port}/"
    answer = httpx.post(url, params={"query_id": query_id}, content="SELECT 1", auth=ADMIN, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.headers["X-ClickHouse-Exception-Code"] == "36"
    assert "X-Injected" not in answer.headers
    # a well-formed one is echoed
    fine = httpx.post(url, params={"query_id": "grafana-42"}, content="SELECT 1", auth=ADMIN, timeout=30)
    assert fine.status_code == 200 and fine.headers["X-ClickHouse-Query-Id"] == "grafana-42"


def test_a_store_outage_names_a_reference_not_the_store_paths(sql_receiver, store, caplog):
    detail = f"Code: 107. DB::Exception: File {store.path}/store/1a2/1a2b/all_1_1_0/data.bin doesn't exist. (FILE_DOESNT_EXIST)"

    def broken(*_: object, **__: object) -> None:
        raise _engine_error(RuntimeError(detail))

    for session in sql_receiver._sql.sessions:
        session.open_stream = broken
        session.run = broken
    caplog.set_level(logging.ERROR)
    url = f"http://127.0.0.1:{sql_receiver.sql_port}/"
    for fmt in ("TabSeparated", "JSON"):  # streamed and collected answers
        answer = httpx.post(
            url, params={"default_format": fmt}, content="SELECT count() FROM audit_events", auth=ADMIN
        )
        assert answer.status_code == 503, answer.text
        assert str(store.path) not in answer.text and "data.bin" not in answer.text
        assert "store unavailable (reference " in answer.text
        reference = answer.text.split("(reference ", 1)[1].split(")", 1)[0]
        assert any(reference in r.getMessage() and "data.bin" in r.getMessage() for r in caplog.records)


def test_a_limit_hit_mid_answer_is_not_a_complete_answer(sql_receiver, store):
    """max_result_rows (10,000 here) trips in the engine while the answer streams: when the
    first MiB had already gone out, the body ends in ClickHouse's tagged exception block
    (``X-ClickHouse-Exception-Tag``, as ClickHouse 25.11+ writes it); before, it is a plain
    error. Where it trips depends on the engine's read-ahead, so a few tries are made."""
    url = f"http://127.0.0.1:{sql_receiver.sql_port}/"
    query = "SELECT a.id, b.id, repeat('x', 2000) AS pad FROM audit_events AS a, audit_events AS b"
    mid_answer = 0
    for _ in range(10):
        received = b""
        with httpx.stream(
            "POST", url, content=query + " FORMAT TabSeparated", auth=ADMIN, timeout=30
        ) as answer:
            for chunk in answer.iter_raw():
                received += chunk
        if answer.status_code != 200:  # tripped within the first MiB: a plain error
            assert answer.headers["X-ClickHouse-Exception-Code"] == "396", received[:300]
            continue
        mid_answer += 1
        tag = answer.headers["X-ClickHouse-Exception-Tag"].encode()
        assert len(received) > 1 << 20
        block = received[received.index(b"__exception__") :]  # the end of the body
        assert block.startswith(b"__exception__\r\n" + tag + b"\r\nCode: 396. DB::Exception"), block[:200]
        assert block.endswith(tag + b"\r\n__exception__\r\n")
        if mid_answer >= 2:
            break
    assert mid_answer, "the limit never tripped after the answer started"
    # clickhouse-connect (Native) raises the engine's error, wherever it tripped
    client = client_for(sql_receiver, store, ADMIN)
    for _ in range(3):
        try:  # clickhouse-connect decodes the blocks after the first lazily: read them all
            rows = len(client.query(query).result_rows)
        except Exception as exc:  # noqa: BLE001 - the engine's error, however the client wraps it
            assert "Code: 396. DB::Exception: Limit for result" in str(exc)
            assert "Streaming query failed" not in str(exc)
        else:
            raise AssertionError(f"a cut answer was taken as whole: {rows} rows")
    # the session is back: the endpoint answers
    assert client.query("SELECT 1").first_row == (1,)


def test_a_client_leaving_mid_answer_gives_the_session_back(sql_receiver, store):
    url = f"http://127.0.0.1:{sql_receiver.sql_port}/"
    query = "SELECT a.id FROM audit_events AS a, audit_events AS b LIMIT 9000 FORMAT TabSeparated"
    for _ in range(4):  # more than the user's two sessions
        with httpx.stream("POST", url, content=query, auth=ADMIN, timeout=30) as answer:
            assert answer.status_code == 200
            next(answer.iter_raw())  # read a little, then hang up
    started = time.monotonic()
    assert client_for(sql_receiver, store, ADMIN).query("SELECT 1").first_row == (1,)
    assert time.monotonic() - started < 10
