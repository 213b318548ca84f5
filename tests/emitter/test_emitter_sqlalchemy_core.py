"""Core statements (``insert(table)``, ``update(table)``, ``delete(table)``) run through a tracked session."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from emitter_support import Captured, captured_fixture  # noqa: F401
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    bindparam,
    create_engine,
    delete,
    insert,
    text,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from otel_audit.sqlalchemy import track


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    __audit_resource_type__ = "account"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str]
    balance: Mapped[int] = mapped_column(default=0)
    api_key: Mapped[str] = mapped_column(default="")


unmapped = Table("scratch", MetaData(), Column("id", Integer, primary_key=True), Column("n", Integer))
accounts = Account.__table__


@pytest.fixture
def factory() -> Iterator[Any]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    unmapped.metadata.create_all(engine)
    made = sessionmaker(engine)
    tracker = track(made)
    yield made
    tracker.untrack()
    engine.dispose()


def events(captured: Captured) -> list[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    out = []
    for a in captured.attrs():
        changes = json.loads(a.get("audit.changes", "{}"))
        extra = {k: a[k] for k in ("audit.bulk", "audit.criteria", "audit.row_count") if k in a}
        out.append((a["audit.action"], a["audit.resource.type"], a["audit.resource.id"], changes, extra))
    return out


def test_core_inserts_are_creates_one_per_row(factory, captured):
    with factory() as s:
        s.execute(insert(accounts).values(id=1, owner="ann", balance=5, api_key="k1"))
        s.execute(insert(accounts), [{"id": 2, "owner": "bob"}, {"id": 3, "owner": "cy", "balance": 7}])
        s.commit()
    got = events(captured)
    assert [(a, t, i) for a, t, i, _, _ in got] == [
        ("create", "account", "1"),
        ("create", "account", "2"),
        ("create", "account", "3"),
    ]
    assert got[0][3] == {
        "id": {"old": None, "new": 1},
        "owner": {"old": None, "new": "ann"},
        "balance": {"old": None, "new": 5},
        "api_key": {"old": "[REDACTED]", "new": "[REDACTED]"},
    }
    assert got[2][3]["balance"] == {"old": None, "new": 7}


def test_core_update_and_delete_with_returning_name_each_row(factory, captured):
    with factory() as s:
        s.execute(insert(accounts), [{"id": i, "owner": f"o{i}", "balance": i} for i in range(1, 6)])
        s.commit()
        captured.clear()
        rows = s.execute(
            update(accounts).where(accounts.c.balance >= 3).values(balance=0).returning(accounts.c.id)
        ).all()
        assert sorted(r.id for r in rows) == [3, 4, 5]  # the application still gets its rows
        gone = s.execute(delete(accounts).where(accounts.c.id <= 2).returning(accounts.c.id)).all()
        assert sorted(r.id for r in gone) == [1, 2]
        s.commit()
    got = events(captured)
    updates = sorted(i for a, _, i, _, _ in got if a == "update")
    deletes = sorted(i for a, _, i, _, _ in got if a == "delete")
    assert updates == ["3", "4", "5"] and deletes == ["1", "2"]
    assert all(c == {"balance": {"old": None, "new": 0}} for a, _, _, c, _ in got if a == "update")
    assert all(extra == {"audit.bulk": True} for *_, extra in got)


def test_core_update_without_returning_is_one_event_with_criteria_and_count(factory, captured):
    with factory() as s:
        s.execute(insert(accounts), [{"id": i, "owner": "same"} for i in range(1, 5)])
        s.commit()
        captured.clear()
        s.execute(update(accounts).where(accounts.c.owner == "same").values(owner="other"))
        s.commit()
    ((action, rtype, rid, changes, extra),) = events(captured)
    assert (action, rtype, rid) == ("update", "account", "")
    assert changes == {"owner": {"old": None, "new": "other"}}
    assert extra["audit.row_count"] == 4 and extra["audit.bulk"] is True
    assert extra["audit.criteria"] == "accounts.owner = :owner_1"  # the value stays in the process


def test_core_executemany_update_is_one_event_with_the_total_count(factory, captured):
    with factory() as s:
        s.execute(insert(accounts), [{"id": i, "owner": "o"} for i in range(1, 4)])
        s.commit()
        captured.clear()
        statement = (
            update(accounts).where(accounts.c.id == bindparam("b_id")).values(balance=bindparam("b_bal"))
        )
        s.execute(statement, [{"b_id": 1, "b_bal": 10}, {"b_id": 3, "b_bal": 30}])
        s.commit()
    ((action, rtype, rid, changes, extra),) = events(captured)
    assert (action, rtype, rid, changes) == ("update", "account", "", {})
    assert extra["audit.row_count"] == 2 and extra["audit.criteria"] == "accounts.id = :b_id"


def test_unmapped_tables_text_connections_and_rollbacks_emit_nothing(factory, captured):
    with factory() as s, s.get_bind().connect() as conn:  # outside a session: documented as not seen
        conn.execute(insert(accounts).values(id=7, owner="direct"))
        conn.commit()
    with factory() as s:
        s.execute(insert(unmapped).values(id=1, n=1))
        s.execute(text("UPDATE accounts SET balance = 1"))  # raw SQL: documented as not audited
        s.commit()
        s.execute(insert(accounts).values(id=9, owner="rolled back"))
        s.execute(update(accounts).values(balance=3).returning(accounts.c.id))
        s.rollback()
    assert events(captured) == []
