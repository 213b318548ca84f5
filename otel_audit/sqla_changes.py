"""What a SQLAlchemy flush or ORM bulk statement changed, read from attribute history (no queries).

``ModelPlan`` is computed once per mapper: the resource type, the audited column and relationship
keys, the primary-key keys. ``object_change`` turns one flushed object into a ``Change``;
``returned_keys`` reads the rows a bulk ``update()``/``delete()`` named (RETURNING) as flat keys.
Imported only by ``otel_audit.sqlalchemy`` (SQLAlchemy is an optional dependency).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy.orm import ColumnProperty, Mapper, RelationshipProperty, attributes
from sqlalchemy.orm.base import PASSIVE_NO_INITIALIZE
from sqlalchemy.sql.elements import BindParameter

from otel_audit.context import AuditContext
from otel_audit.model_changes import Change


@dataclass(frozen=True)
class ModelPlan:
    """The audit rules of one mapped class (``None`` plan = not audited)."""

    resource_type: str
    columns: tuple[str, ...]
    relationships: tuple[str, ...]
    pk_keys: tuple[str, ...]
    #: column name in the table → attribute key (bulk statements name columns)
    column_keys: dict[str, str]


@dataclass(frozen=True)
class Rules:
    """``track()``'s options, normalised. Model entries are classes or table names; column entries
    are ``"column"`` (every model) or ``"table.column"``."""

    include: frozenset[Any] | None
    exclude: frozenset[Any]
    include_columns: frozenset[str] | None
    exclude_columns: frozenset[str]

    @classmethod
    def of(
        cls,
        include: Iterable[Any] | None,
        exclude: Iterable[Any],
        include_columns: Iterable[str] | None,
        exclude_columns: Iterable[str],
    ) -> Rules:
        return cls(
            None if include is None else frozenset(include),
            frozenset(exclude),
            None if include_columns is None else frozenset(include_columns),
            frozenset(exclude_columns),
        )

    def _names(self, mapper: Mapper[Any]) -> set[Any]:
        table = getattr(mapper.local_table, "name", None)
        return {mapper.class_, table, mapper.class_.__name__}

    def wants_model(self, mapper: Mapper[Any]) -> bool:
        names = self._names(mapper)
        if self.include is not None and not names & self.include:
            return False
        return not names & self.exclude

    def wants_column(self, table: str, key: str) -> bool:
        if key in self.exclude_columns or f"{table}.{key}" in self.exclude_columns:
            return False
        if self.include_columns is None:
            return True
        return key in self.include_columns or f"{table}.{key}" in self.include_columns


def make_plan(mapper: Mapper[Any], rules: Rules) -> ModelPlan | None:
    if not rules.wants_model(mapper):
        return None
    table = str(getattr(mapper.local_table, "name", mapper.class_.__name__))
    resource_type = getattr(mapper.class_, "__audit_resource_type__", None) or table
    columns = []
    column_keys: dict[str, str] = {}
    for prop in mapper.iterate_properties:
        if isinstance(prop, ColumnProperty):
            for column in prop.columns:
                column_keys[str(getattr(column, "name", prop.key))] = prop.key
            if rules.wants_column(table, prop.key):
                columns.append(prop.key)
    relationships = tuple(
        prop.key
        for prop in mapper.iterate_properties
        if isinstance(prop, RelationshipProperty) and rules.wants_column(table, prop.key)
    )
    pk_keys = tuple(mapper.get_property_by_column(c).key for c in mapper.primary_key)
    return ModelPlan(str(resource_type), tuple(columns), relationships, pk_keys, column_keys)


def join_id(values: Iterable[Any]) -> str:
    """The SPEC's ``resource_id`` of a primary key: ``:``-joined when composite."""
    return ":".join("" if v is None else str(v) for v in values)


def object_id(obj: Any) -> str | None:
    """The primary key of a related object from what is loaded (``None`` when unknown)."""
    state = attributes.instance_state(obj)
    if state.key is not None:
        return join_id(state.key[1])
    mapper = state.mapper
    values = [state.dict.get(mapper.get_property_by_column(c).key) for c in mapper.primary_key]
    return None if all(v is None for v in values) else join_id(values)


def _ids(objs: Iterable[Any]) -> list[str | None]:
    return [object_id(o) for o in objs if o is not None]


def object_change(state: Any, action: str, plan: ModelPlan, context: AuditContext) -> Change | None:
    """The event of one flushed object; ``None`` for a dirty object with no audited change."""
    values = state.dict
    if len(plan.pk_keys) == 1:  # the common case, on every flushed row: no generator and join
        key = values.get(plan.pk_keys[0])
        resource_id = "" if key is None else str(key)
    else:
        resource_id = join_id(values.get(k) for k in plan.pk_keys)
    changes: dict[str, dict[str, Any]] = {}
    if action == "create":
        for key in plan.columns:
            value = values.get(key)
            if value is not None:
                changes[key] = {"old": None, "new": value}
    elif action == "delete":
        for key in plan.columns:
            if key in values and values[key] is not None:
                changes[key] = {"old": values[key], "new": None}
    else:
        for key in plan.columns:
            history = _history(state, key)
            if history.added or history.deleted:
                old = history.deleted[0] if history.deleted else None
                new = history.added[0] if history.added else None
                if old != new:
                    changes[key] = {"old": old, "new": new}
    for key in plan.relationships:
        history = _history(state, key)
        if not (history.added or history.deleted):
            continue
        if state.mapper.get_property(key).uselist:
            kept = _ids(history.unchanged)
            old_ids = sorted(str(i) for i in kept + _ids(history.deleted) if i is not None)
            new_ids = sorted(str(i) for i in kept + _ids(history.added) if i is not None)
            if action == "create":
                old_ids = []
            if old_ids != new_ids:
                changes[key] = {"old": old_ids, "new": new_ids}
        else:
            old_ref = _ids(history.deleted)[:1]
            new_ref = _ids(history.added)[:1]
            old_v = old_ref[0] if old_ref else None
            new_v = new_ref[0] if new_ref else None
            if old_v != new_v:
                changes[key] = {"old": old_v, "new": new_v}
    if action == "update" and not changes:
        return None
    return Change(action, plan.resource_type, resource_id, changes, context)


def _history(state: Any, key: str) -> Any:
    return state.get_history(key, PASSIVE_NO_INITIALIZE)


def set_values(statement: Any, plan: ModelPlan) -> dict[str, Any]:
    """An ORM ``update()``'s SET clause as ``{attribute key: value}`` (SQL expressions as text)."""
    out: dict[str, Any] = {}
    for target, value in (getattr(statement, "_values", None) or {}).items():
        name = getattr(target, "key", None) or getattr(target, "name", None) or str(target)
        key = plan.column_keys.get(str(name), str(name))
        if isinstance(value, BindParameter):
            value = value.effective_value
        elif not isinstance(value, (str, int, float, bool, type(None))):
            value = str(value)
        out[key] = value
    return out


def criteria_text(statement: Any) -> str:
    """The statement's WHERE clause with placeholders (its bound values never leave the process)."""
    where = getattr(statement, "whereclause", None)
    return "" if where is None else str(where)


def returned_keys(rows: Sequence[Any], mapper: Mapper[Any]) -> tuple[tuple[Any, ...], ...] | None:
    """The primary keys of RETURNING rows as one tuple of values per key column (``Rows.keys``), or
    ``None`` when the rows lack a primary-key column. A statement's 10 k rows cost one C-level pass
    per key column and leave no per-row object: the ids' text is made on the worker."""
    if not rows:
        return ((),)
    indexes = _key_indexes(rows[0], mapper)
    if indexes is not None:
        return tuple(tuple(map(itemgetter(i), rows)) for i in indexes)
    first = rows[0]._mapping  # a key only the mapping resolves (a label, a proxied column): per row
    keys: list[Any] = list(mapper.primary_key)
    if not all(k in first for k in keys):
        keys = [mapper.get_property_by_column(c).key for c in mapper.primary_key]
        if not all(k in first for k in keys):
            return None
    return (tuple(join_id(r._mapping[k] for k in keys) for r in rows),)


def _key_indexes(row: Any, mapper: Mapper[Any]) -> list[int] | None:
    """The positions of the primary-key columns in ``row``, looked up once per statement in the
    row's own key index (keyed by the columns, else by the attribute keys); ``None`` when that
    index does not name them all (the caller falls back to the row's mapping)."""
    index = getattr(row, "_key_to_index", None)  # SQLAlchemy's per-result lookup table
    if not isinstance(index, Mapping):
        return None
    for keys in (mapper.primary_key, [mapper.get_property_by_column(c).key for c in mapper.primary_key]):
        found = [index.get(k) for k in keys]
        if all(type(i) is int for i in found):
            return found  # type: ignore[return-value]
    return None


def param_rows(parameters: Iterable[Mapping[str, Any]]) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """A bulk statement's parameter sets as captured on the committing thread: per set, its names
    and its values as two flat tuples (no dict copied per row; ``updated_row``/``inserted_row`` read
    them on the worker)."""
    return [(tuple(p), tuple(p.values())) for p in parameters]


def _keyed(plan: ModelPlan, row: tuple[tuple[Any, ...], tuple[Any, ...]]) -> dict[str, Any]:
    names, values = row
    return {plan.column_keys.get(str(k), str(k)): v for k, v in zip(names, values, strict=True)}


def updated_row(plan: ModelPlan, row: tuple[tuple[Any, ...], tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
    """ORM bulk UPDATE by primary key: a parameter set names its row and its new values."""
    keyed = _keyed(plan, row)
    resource_id = join_id(keyed.get(k) for k in plan.pk_keys)
    changes = {
        k: {"old": None, "new": v} for k, v in keyed.items() if k not in plan.pk_keys and k in plan.columns
    }
    return resource_id, changes


def inserted_row(plan: ModelPlan, row: tuple[tuple[Any, ...], tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
    """One parameter set of an ORM ``insert()`` of many: the created row (its id ``""`` when the
    parameters do not hold the key)."""
    keyed = _keyed(plan, row)
    resource_id = join_id(keyed.get(k) for k in plan.pk_keys)
    changes = {k: {"old": None, "new": v} for k, v in keyed.items() if k in plan.columns and v is not None}
    return ("" if not resource_id.strip(":") else resource_id), changes
