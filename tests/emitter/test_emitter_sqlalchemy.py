"""otel_audit.sqlalchemy.track() on real SQLAlchemy sessions over SQLite (sync and aiosqlite)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from emitter_support import Captured, captured_fixture  # noqa: F401
from sqlalchemy import Column, ForeignKey, String, Table, create_engine, delete, event, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    scoped_session,
    sessionmaker,
)

import otel_audit
from otel_audit.sqlalchemy import track


class Base(DeclarativeBase):
    pass


post_tags = Table(
    "post_tags",
    Base.metadata,
    Column("post_id", ForeignKey("posts.id"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id"), primary_key=True),
)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    password: Mapped[str] = mapped_column(default="")
    last_seen: Mapped[int] = mapped_column(default=0)


class Post(Base):
    __tablename__ = "posts"
    __audit_resource_type__ = "article"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    author: Mapped[User | None] = relationship()
    tags: Mapped[list[Tag]] = relationship(secondary=post_tags)


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(default="")


class Membership(Base):
    __tablename__ = "memberships"
    org: Mapped[str] = mapped_column(String, primary_key=True)
    user_id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[str]


class Setting(Base):
    __tablename__ = "settings"
    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[str]


@pytest.fixture
def engine() -> Iterator[Any]:
    eng = create_engine("sqlite://")
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


def events(captured: Captured) -> list[dict[str, Any]]:
    out = []
    for a in captured.attrs():
        a = dict(a)
        a["changes"] = json.loads(a.pop("audit.changes", "{}"))
        out.append(a)
    return out


def key(e: dict[str, Any]) -> tuple[str, str, str]:
    return (e["audit.action"], e["audit.resource.type"], e["audit.resource.id"])


def test_create_update_delete_with_column_diffs_and_context(engine, captured):
    factory = sessionmaker(engine)
    tracker = track(factory)
    with otel_audit.audit_context(user_id="alice", tenant_id="acme", ip_address="198.51.100.4"):
        with factory() as s:
            s.add(User(id=1, name="Ann", password="hunter2"))
            s.commit()
            user = s.get(User, 1)
            user.name = "Anne"
            user.password = "hunter3"
            s.commit()
            s.delete(s.get(User, 1))
            s.commit()
    tracker.untrack()
    got = events(captured)
    assert [key(e) for e in got] == [
        ("create", "users", "1"),
        ("update", "users", "1"),
        ("delete", "users", "1"),
    ]
    assert got[0]["changes"]["name"] == {"old": None, "new": "Ann"}
    assert got[0]["changes"]["password"] == {"old": "[REDACTED]", "new": "[REDACTED]"}
    assert got[1]["changes"] == {
        "name": {"old": "Ann", "new": "Anne"},
        "password": {"old": "[REDACTED]", "new": "[REDACTED]"},
    }
    assert got[2]["changes"]["name"] == {"old": "Anne", "new": None}
    assert all(e["enduser.id"] == "alice" and e["audit.tenant.id"] == "acme" for e in got)
    assert all(e["client.address"] == "198.51.100.4" for e in got)
    assert "hunter" not in json.dumps(got)


def test_rollback_emits_nothing_and_savepoint_rollback_drops_only_its_changes(engine, captured):
    factory = sessionmaker(engine)
    track(factory)
    with factory() as s:
        s.add(User(id=1, name="a"))
        s.flush()
        s.rollback()
        assert events(captured) == []
        s.add(User(id=2, name="kept"))
        s.flush()
        try:
            with s.begin_nested():
                s.add(User(id=3, name="dropped"))
                s.flush()
                raise ValueError("undo the savepoint")
        except ValueError:
            pass
        with s.begin_nested():
            s.add(User(id=4, name="kept too"))
        assert events(captured) == []  # nothing before the outer commit
        s.commit()
    assert sorted(key(e) for e in events(captured)) == [("create", "users", "2"), ("create", "users", "4")]


def test_composite_keys_resource_type_many_to_many_and_merged_flushes(engine, captured):
    factory = sessionmaker(engine)
    track(factory)
    with factory() as s:
        s.add_all([Tag(id=1), Tag(id=2), Tag(id=3), Membership(org="acme", user_id=7, role="viewer")])
        s.add(Post(id=1, title="draft", tags=[]))
        s.commit()
        captured.clear()
        post = s.get(Post, 1)
        post.title = "final"
        post.tags.append(s.get(Tag, 2))  # s.get autoflushes the title: two flushes, one event
        post.tags.append(s.get(Tag, 3))
        s.get(Membership, ("acme", 7)).role = "admin"
        s.commit()
        post.tags.remove(s.get(Tag, 2))
        s.commit()
    got = events(captured)
    assert [key(e) for e in got] == [
        ("update", "article", "1"),
        ("update", "memberships", "acme:7"),
        ("update", "article", "1"),
    ]
    assert got[0]["changes"] == {
        "title": {"old": "draft", "new": "final"},
        "tags": {"old": [], "new": ["2", "3"]},
    }
    assert got[1]["changes"] == {"role": {"old": "viewer", "new": "admin"}}
    assert got[2]["changes"] == {"tags": {"old": ["2", "3"], "new": ["3"]}}


def test_many_to_one_relationship_change(engine, captured):
    factory = sessionmaker(engine)
    track(factory)
    with factory() as s:
        s.add_all([User(id=1, name="a"), User(id=2, name="b"), Post(id=5, title="t", author_id=1)])
        s.commit()
        captured.clear()
        post = s.get(Post, 5)
        _ = post.author
        post.author = s.get(User, 2)
        s.commit()
    (got,) = events(captured)
    assert got["changes"]["author"] == {"old": "1", "new": "2"}
    assert got["changes"]["author_id"] == {"old": 1, "new": 2}


def test_include_exclude_models_and_columns(engine, captured):
    factory = sessionmaker(engine)
    track(factory, exclude=[Setting, "tags"], exclude_columns=["last_seen", "posts.author_id"])
    with factory() as s:
        s.add_all([User(id=1, name="a", last_seen=5), Setting(id=1, value="x"), Tag(id=1)])
        s.add(Post(id=1, title="t", author_id=1))
        s.commit()
        s.get(User, 1).last_seen = 6  # only an excluded column: no event
        s.commit()
    got = events(captured)
    assert sorted(key(e) for e in got) == [("create", "article", "1"), ("create", "users", "1")]
    assert "last_seen" not in next(e for e in got if e["audit.resource.type"] == "users")["changes"]
    assert "author_id" not in next(e for e in got if e["audit.resource.type"] == "article")["changes"]

    captured.clear()
    other = sessionmaker(engine)
    track(other, include=[User], include_columns=["name"])
    with other() as s:
        s.add_all([User(id=2, name="b", password="p"), Setting(id=2, value="y")])
        s.commit()
    (only,) = events(captured)
    assert key(only) == ("create", "users", "2") and set(only["changes"]) == {"name"}


def test_bulk_update_and_delete_are_counted_exactly(engine, captured):
    factory = sessionmaker(engine)
    track(factory)
    with factory() as s:
        s.add_all([User(id=i, name=f"u{i}", password="p") for i in range(1, 11)])
        s.commit()
        captured.clear()
        statements = 0

        @event.listens_for(engine, "before_cursor_execute")
        def count(*_: Any) -> None:
            nonlocal statements
            statements += 1

        # criteria only (synchronize_session evaluate): one event with the criteria and row count
        s.execute(update(User).where(User.id <= 4).values(name="x", password="secret"))
        # synchronize_session="fetch" (RETURNING on SQLite): one event per affected row
        s.execute(
            update(User).where(User.id > 7).values(name="y"),
            execution_options={"synchronize_session": "fetch"},
        )
        # the application's own RETURNING: its result is still readable
        rows = s.execute(delete(User).where(User.id.in_([5, 6])).returning(User.id, User.name)).all()
        assert sorted(r.id for r in rows) == [5, 6]
        # bulk UPDATE by primary key
        s.execute(update(User), [{"id": 7, "name": "z"}])
        s.commit()
        event.remove(engine, "before_cursor_execute", count)
    assert statements == 4  # auditing added no query
    got = events(captured)
    criteria = [e for e in got if e["audit.resource.id"] == ""]
    assert len(criteria) == 1
    assert criteria[0]["audit.row_count"] == 4 and criteria[0]["audit.criteria"] == "users.id <= :id_1"
    assert criteria[0]["changes"] == {
        "name": {"old": None, "new": "x"},
        "password": {"old": "[REDACTED]", "new": "[REDACTED]"},
    }
    per_row = sorted(key(e) for e in got if e["audit.resource.id"])
    assert per_row == [
        ("delete", "users", "5"),
        ("delete", "users", "6"),
        ("update", "users", "10"),
        ("update", "users", "7"),
        ("update", "users", "8"),
        ("update", "users", "9"),
    ]
    assert all(e["audit.bulk"] is True for e in got)


def test_bulk_statement_rolled_back_emits_nothing(engine, captured):
    factory = sessionmaker(engine)
    track(factory)
    with factory() as s:
        s.add(User(id=1, name="a"))
        s.commit()
        captured.clear()
        s.execute(update(User).values(name="b"))
        s.rollback()
    assert events(captured) == []


def test_session_class_and_scoped_session_targets(engine, captured):
    class AppSession(Session):
        pass

    track(AppSession)
    with AppSession(engine) as s:
        s.add(User(id=1, name="a"))
        s.commit()
    with Session(engine) as s:  # another session class: not tracked
        s.add(User(id=2, name="b"))
        s.commit()
    scoped = scoped_session(sessionmaker(engine))
    track(scoped)
    scoped.add(User(id=3, name="c"))
    scoped.commit()
    scoped.remove()
    assert [key(e) for e in events(captured)] == [("create", "users", "1"), ("create", "users", "3")]
    with pytest.raises(TypeError):
        track(object())


def test_asyncio_sessions(captured):
    async def run() -> None:
        eng = create_async_engine("sqlite+aiosqlite://")
        async with eng.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        factory = async_sessionmaker(eng)
        track(factory)

        class AppAsync(AsyncSession):
            pass

        track(AppAsync)
        with otel_audit.audit_context(user_id="bob", ip_address="203.0.113.1"):
            async with factory() as s:
                s.add(User(id=1, name="a"))
                await s.commit()
                (await s.get(User, 1)).name = "b"
                await s.commit()
                await s.execute(update(User).where(User.id == 1).values(name="c"))
                await s.rollback()
            async with AppAsync(eng) as s:
                await s.delete(await s.get(User, 1))
                await s.commit()
            async with AsyncSession(eng) as s:  # untracked
                s.add(User(id=9, name="z"))
                await s.commit()
        await eng.dispose()

    asyncio.run(run())
    got = events(captured)
    assert [key(e) for e in got] == [
        ("create", "users", "1"),
        ("update", "users", "1"),
        ("delete", "users", "1"),
    ]
    assert got[1]["changes"] == {"name": {"old": "a", "new": "b"}}
    assert all(e["enduser.id"] == "bob" and e["client.address"] == "203.0.113.1" for e in got)


def test_tracking_adds_no_query(engine, captured):
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    def work(factory: Any, base: int) -> list[str]:
        statements.clear()
        with factory() as s:
            s.add_all(
                [
                    User(id=base + 1, name="a", password="p"),
                    Post(id=base + 1, title="t", tags=[Tag(id=base + 1)]),
                ]
            )
            s.commit()
            user = s.get(User, base + 1)
            user.name = "b"
            post = s.get(Post, base + 1)
            post.tags.append(Tag(id=base + 2))
            post.title = "u"
            s.commit()
            s.delete(s.get(User, base + 1))
            s.commit()
        return list(statements)

    plain = work(sessionmaker(engine), 0)
    tracked_factory = sessionmaker(engine)
    track(tracked_factory)
    tracked = work(tracked_factory, 100)
    event.remove(engine, "before_cursor_execute", count)
    assert tracked == plain and len(plain) > 5
    assert sorted(key(e) for e in events(captured)) == [
        ("create", "article", "101"),
        ("create", "tags", "101"),
        ("create", "tags", "102"),
        ("create", "users", "101"),
        ("delete", "users", "101"),
        ("update", "article", "101"),
        ("update", "users", "101"),
    ]


def test_orm_bulk_insert_statements(engine, captured):
    from sqlalchemy import insert

    factory = sessionmaker(engine)
    track(factory)
    with factory() as s:
        s.execute(insert(User), [{"id": 1, "name": "a", "password": "p"}, {"id": 2, "name": "b"}])
        s.execute(insert(User).values(name="c"))  # the id comes from the insert's result
        s.execute(insert(Membership), [{"org": "o", "user_id": 1, "role": "r"}])
        s.execute(insert(User), [{"name": "no key given"}])
        s.commit()
        s.execute(insert(User), [{"id": 9, "name": "never"}])
        s.rollback()
    got = events(captured)
    assert [key(e) for e in got] == [
        ("create", "users", "1"),
        ("create", "users", "2"),
        ("create", "users", "3"),
        ("create", "memberships", "o:1"),
        ("create", "users", ""),  # many rows without their keys and no RETURNING: id unknown
    ]
    assert got[0]["changes"]["password"] == {"old": "[REDACTED]", "new": "[REDACTED]"}
    assert got[2]["changes"] == {"name": {"old": None, "new": "c"}}
    assert all(e["audit.bulk"] is True for e in got)


def test_bulk_statement_on_a_composite_key_names_each_row(engine, captured):
    factory = sessionmaker(engine)
    track(factory)
    with factory() as s:
        s.add_all([Membership(org=f"o{i % 2}", user_id=i, role="r") for i in range(1, 7)])
        s.commit()
        captured.clear()
        s.execute(
            update(Membership).where(Membership.user_id > 3).values(role="admin"),
            execution_options={"synchronize_session": "fetch"},
        )
        # the application's RETURNING names the key's columns in its own order
        gone = delete(Membership).where(Membership.user_id <= 2)
        s.execute(gone.returning(Membership.role, Membership.user_id, Membership.org)).all()
        # without every key column: one event with the criteria and count
        s.execute(delete(Membership).where(Membership.user_id == 3).returning(Membership.org)).all()
        s.commit()
    got = events(captured)
    assert sorted(key(e) for e in got) == [
        ("delete", "memberships", ""),
        ("delete", "memberships", "o0:2"),
        ("delete", "memberships", "o1:1"),
        ("update", "memberships", "o0:4"),
        ("update", "memberships", "o0:6"),
        ("update", "memberships", "o1:5"),
    ]
    assert all(
        e["changes"] == {"role": {"old": None, "new": "admin"}} for e in got if e["audit.action"] == "update"
    )


def python_calls(fn: Any) -> int:
    """Python-level function calls ``fn()`` makes on this thread (C calls not counted)."""
    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def test_a_bulk_statements_rows_cost_the_caller_no_python_call_per_row(engine, captured):
    # the per-row work (ids, events) is the worker's: the statement's thread only reads the
    # RETURNING rows' key column once, in C
    rows = 2_000
    plain, tracked = sessionmaker(engine), sessionmaker(engine)
    track(tracked)
    with plain() as s:
        s.add_all([User(id=i, name="u") for i in range(rows)])
        s.commit()

    def statement(factory: Any) -> None:
        with factory() as s:
            s.execute(update(User).values(name="v"), execution_options={"synchronize_session": "fetch"})
            s.commit()

    for factory in (plain, tracked):  # warm SQLAlchemy's caches for both
        statement(factory)
    added = python_calls(lambda: statement(tracked)) - python_calls(lambda: statement(plain))
    assert added < rows // 4, added  # a constant: the hooks, a few calls a statement
    otel_audit.force_flush()
    assert len([e for e in events(captured) if e["audit.action"] == "update"]) == 2 * rows


def test_parameter_sets_cost_the_caller_no_python_call_per_row(engine, captured):
    # insert() of many parameter sets and the ORM bulk UPDATE by primary key: each row's values
    # are copied as two flat tuples; its id and changes are made on the worker
    from sqlalchemy import insert

    rows = 2_000
    plain, tracked = sessionmaker(engine), sessionmaker(engine)
    track(tracked)

    def statements(factory: Any, offset: int) -> None:
        with factory() as s:
            s.execute(insert(User), [{"id": offset + i, "name": "u", "password": "p"} for i in range(rows)])
            s.execute(update(User), [{"id": offset + i, "name": f"v{i}"} for i in range(rows)])
            s.commit()

    statements(plain, 0)  # warm SQLAlchemy's caches for both
    statements(tracked, rows)
    added = python_calls(lambda: statements(tracked, 3 * rows)) - python_calls(
        lambda: statements(plain, 2 * rows)
    )
    assert added < rows // 4, added  # a constant: the hooks, a few calls a statement
    otel_audit.force_flush()
    got = [e for e in events(captured) if int(e["audit.resource.id"]) >= 3 * rows]
    assert [key(e) for e in got] == [("create", "users", str(3 * rows + i)) for i in range(rows)] + [
        ("update", "users", str(3 * rows + i)) for i in range(rows)
    ]
    assert got[0]["changes"] == {
        "id": {"old": None, "new": 3 * rows},
        "name": {"old": None, "new": "u"},
        "password": {"old": "[REDACTED]", "new": "[REDACTED]"},
    }
    assert got[rows + 5]["changes"] == {"name": {"old": None, "new": "v5"}}
