"""``track(target)``: audit every insert, update and delete a SQLAlchemy session commits (SPEC section 12).

Flushed objects become ``create``/``update``/``delete`` events with ``resource_type`` = the table
name (or the model's ``__audit_resource_type__``), ``resource_id`` = the primary key (``:``-joined
when composite) and ``audit.changes`` from the attributes' history (relationships and many-to-many
collections as the related primary keys); ORM bulk ``update()``/``delete()`` statements become one
event per affected row when RETURNING or ``synchronize_session="fetch"`` names the rows, else one
event with the statement's criteria and row count; ORM ``insert()`` statements become one
``create`` per parameter set. Events wait in ``session.info`` and are recorded
after the outermost commit, with the request context of the moment the change was flushed; a
rollback (of the transaction or of the savepoint they were flushed in) discards them.

>>> SessionLocal = sessionmaker(engine)
>>> otel_audit.sqlalchemy.track(SessionLocal, exclude_columns=["last_seen"])
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, mapperlib, scoped_session, sessionmaker
from sqlalchemy.orm.attributes import instance_state

from otel_audit.context import current_context
from otel_audit.model_changes import Change, Each, Rows, emit, merge
from otel_audit.recorder import changes_json, note_error
from otel_audit.sqla_changes import (
    ModelPlan,
    Rules,
    criteria_text,
    inserted_row,
    join_id,
    make_plan,
    object_change,
    param_rows,
    returned_keys,
    set_values,
    updated_row,
)

__all__ = ["Tracker", "track"]

_PENDING = "otel_audit.pending"


class Tracker:
    """The listeners ``track()`` installed on one session class; ``untrack()`` removes them."""

    def __init__(self, session_class: Any, rules: Rules) -> None:
        self.target = session_class
        self.rules = rules
        self._plans: dict[Any, ModelPlan | None] = {}
        self._hooks = (
            ("after_flush", self._after_flush),
            ("do_orm_execute", self._on_execute),
            ("after_commit", self._after_commit),
            ("after_soft_rollback", self._after_soft_rollback),
        )
        for name, fn in self._hooks:
            event.listen(session_class, name, fn)

    def untrack(self) -> None:
        for name, fn in self._hooks:
            event.remove(self.target, name, fn)

    def plan(self, mapper: Any) -> ModelPlan | None:
        try:
            return self._plans[mapper]
        except KeyError:
            plan = self._plans[mapper] = make_plan(mapper, self.rules)
            return plan

    # -- collecting -------------------------------------------------------------------------------

    def _after_flush(self, session: Session, flush_context: Any) -> None:
        try:
            context = current_context()
            found: list[Change] = []
            for objects, action in (
                (session.new, "create"),
                (session.dirty, "update"),
                (session.deleted, "delete"),
            ):
                for obj in objects:
                    state = instance_state(obj)
                    plan = self.plan(state.mapper)
                    if plan is None or (action == "update" and state.deleted):
                        continue
                    change = object_change(state, action, plan, context)
                    if change is not None:
                        found.append(change)
            if found:
                _add(session, found)
        except Exception as exc:  # auditing never breaks the application's flush
            note_error(exc)

    def _on_execute(self, state: Any) -> Any:
        if not (state.is_update or state.is_delete or state.is_insert):
            return None
        mapper = state.bind_mapper
        core = mapper is None  # a Core statement on a Table: audited when a mapped class owns it
        if core:
            mapper = table_mapper(getattr(state.statement, "table", None))
        plan = self.plan(mapper) if mapper is not None else None
        if plan is None:
            return None
        result = state.invoke_statement()
        try:
            return self._collect_bulk(state, mapper, plan, result, core)
        except Exception as exc:
            note_error(exc)
            return result

    def _collect_bulk(self, state: Any, mapper: Any, plan: ModelPlan, result: Any, core: bool) -> Any:
        context = current_context()
        bulk = {"audit.bulk": True}
        params = state.parameters
        if state.is_insert:
            if isinstance(params, list) and len(params) > 1:  # the rows' events are built on the worker
                build = partial(inserted_row, plan)
                _add(
                    state.session,
                    [Each("create", plan.resource_type, param_rows(params), build, context, bulk)],
                )
            elif params != []:
                rid, new = inserted(state, plan, result)
                _add(state.session, [Change("create", plan.resource_type, rid, new, context, bulk)])
            return result
        action = "update" if state.is_update else "delete"
        if state.is_executemany and not core:  # ORM bulk UPDATE by primary key: parameters name rows
            rows = param_rows(params if isinstance(params, list) else [])
            build = partial(updated_row, plan)
            _add(state.session, [Each(action, plan.resource_type, rows, build, context, bulk)])
            return result
        statement = state.statement
        # every row's event carries the same SET values: redacted and serialised once
        # (a Core executemany's SET values are per parameter set: not one statement-wide value)
        shared = action == "update" and not state.is_executemany
        new = changes_json(_news(set_values(statement, plan))) if shared else None
        keys: tuple[tuple[Any, ...], ...] | None = None
        if getattr(statement, "_returning", None):  # the application's RETURNING: read, then replay
            frozen = result.freeze()
            keys = returned_keys(frozen().all(), mapper)
            result = frozen()
        else:
            rows = getattr(result, "returned_defaults_rows", None)  # synchronize_session="fetch"
            if rows:
                keys = returned_keys(rows, mapper)
        if keys is not None:
            _add(state.session, [Rows(action, plan.resource_type, keys, new, context, bulk)])
        else:
            extra = {
                **bulk,
                "audit.criteria": criteria_text(statement),
                "audit.row_count": int(getattr(result, "rowcount", -1)),
            }
            _add(state.session, [Change(action, plan.resource_type, "", new, context, extra)])
        return result

    # -- emitting ---------------------------------------------------------------------------------

    def _after_commit(self, session: Session) -> None:
        if session.in_nested_transaction():  # a savepoint: its events wait for the real commit
            return
        pending = session.info.pop(_PENDING, None)
        if pending:
            emit([pending[0][1]] if len(pending) == 1 else merge(change for _, change in pending))

    def _after_soft_rollback(self, session: Session, previous: Any) -> None:
        pending = session.info.get(_PENDING)
        if pending:
            session.info[_PENDING] = [p for p in pending if not _within(p[0], previous)]


def table_mapper(table: Any) -> Any:
    """The mapper of the class mapped to ``table`` (the base one under inheritance), else ``None``."""
    if table is None:
        return None
    try:
        return _TABLE_MAPPERS[table]
    except (KeyError, TypeError):
        pass
    found = None
    for registry in mapperlib._all_registries():  # no public index of tables to mappers
        for mapper in registry.mappers:
            if mapper.local_table is table and (found is None or found.isa(mapper)):
                found = mapper
    if found is not None:  # a table mapped later is found then
        _TABLE_MAPPERS[table] = found
    return found


_TABLE_MAPPERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def inserted(state: Any, plan: ModelPlan, result: Any) -> tuple[str, dict[str, Any]]:
    """An ORM ``insert()`` of one row (its ``values()`` and parameters): its id from them, else from
    the result's ``inserted_primary_key``."""
    params = state.parameters
    if isinstance(params, list):
        row = dict(params[0]) if params else {}
    else:
        row = {**set_values(state.statement, plan), **dict(params or {})}
    resource_id, new = inserted_row(plan, (tuple(row), tuple(row.values())))
    if not resource_id:
        try:
            resource_id = join_id(result.inserted_primary_key)
        except Exception:  # not a single-row insert result: the id stays unknown
            resource_id = ""
    return ("" if not resource_id.strip(":") else resource_id), new


def _news(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: {"old": None, "new": v} for k, v in values.items()}


def _add(session: Session, changes: Sequence[Change | Rows | Each]) -> None:
    transaction = session.get_nested_transaction() or session.get_transaction()
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
    for change in changes:
        pending.append((transaction, change))


def _within(transaction: Any, ended: Any) -> bool:
    """True when ``transaction`` is ``ended`` or nested inside it."""
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


def _session_class(target: Any) -> Any:
    """The class (or sessionmaker) whose events cover exactly the sessions ``target`` makes."""
    if isinstance(target, scoped_session):
        target = target.session_factory
    if isinstance(target, sessionmaker):
        return target  # a sessionmaker makes its own subclass: listening on it is specific
    sync_class = _async_sync_class(target)
    if sync_class is not None:
        return sync_class
    if isinstance(target, type) and issubclass(target, Session):
        return target
    raise TypeError(f"track() needs a Session class, sessionmaker or scoped_session, not {target!r}")


def _async_sync_class(target: Any) -> Any:
    """For an ``async_sessionmaker`` or ``AsyncSession`` subclass: the ``Session`` class its
    sessions run on, made its own (a subclass) so that tracking it covers only them."""
    try:
        from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    except ImportError:  # the asyncio extension needs greenlet
        return None
    if isinstance(target, async_sessionmaker):
        base = target.kw.get("sync_session_class") or target.class_.sync_session_class
        own = type(base.__name__, (base,), {})
        target.kw["sync_session_class"] = own
        return own
    if isinstance(target, type) and issubclass(target, AsyncSession):
        if target is not AsyncSession and target.sync_session_class is Session:
            target.sync_session_class = type("Session", (Session,), {})
        return target.sync_session_class
    return None


def track(
    target: Any,
    *,
    include: Iterable[Any] | None = None,
    exclude: Iterable[Any] = (),
    include_columns: Iterable[str] | None = None,
    exclude_columns: Iterable[str] = (),
) -> Tracker:
    """Audit what sessions made by ``target`` commit: a ``Session`` subclass, ``sessionmaker``,
    ``scoped_session``, ``AsyncSession`` subclass or ``async_sessionmaker``.

    ``include``/``exclude``: model classes or table names (``include=None``: every mapped model).
    ``include_columns``/``exclude_columns``: ``"column"`` for every model or ``"table.column"``;
    relationships are named like columns. Values are redacted like ``record()``'s. Tracking the
    ``Session`` class itself covers every session in the process.
    """
    rules = Rules.of(include, exclude, include_columns, exclude_columns)
    return Tracker(_session_class(target), rules)
