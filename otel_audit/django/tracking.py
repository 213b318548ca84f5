"""Model changes → audit events, emitted through ``transaction.on_commit`` (a rollback drops them).

Loaded instances keep a snapshot of their loaded field values (``post_init``, no query), so a
save's diff needs no extra query. Signals are connected per tracked model (untracked models keep
Django's fast paths). ``QuerySet.update()`` (one query for the affected primary keys first),
``bulk_create()`` and ``bulk_update()`` send no signals, so they are wrapped; queryset deletes
send ``post_delete`` per row once a receiver is connected. Many-to-many changes read the related
keys before the change (one query). Admin actions are recorded as ``execute`` events.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial, wraps
from typing import Any

from django.apps import apps
from django.db import models, transaction
from django.db.models.expressions import Combinable
from django.db.models.signals import m2m_changed, post_delete, post_init, post_save

from otel_audit.context import current_context
from otel_audit.django.options import DjangoOptions
from otel_audit.model_changes import Change, Rows, emit
from otel_audit.recorder import changes_json, note_error, record

_SNAPSHOT = "_otel_audit_snapshot"
_M2M_BEFORE = "_otel_audit_m2m_before"
_BULK = {"audit.bulk": True}
#: set inside a wrapped bulk method: the ``update()`` calls it makes are its own, not audited again
_inside_bulk: ContextVar[bool] = ContextVar("otel_audit_inside_bulk", default=False)


@dataclass(frozen=True)
class ModelPlan:
    resource_type: str
    #: field name → attribute name (``author`` → ``author_id``)
    fields: dict[str, str]


_plans: dict[type, ModelPlan | None] = {}
_options: DjangoOptions | None = None


def plan_for(model: type) -> ModelPlan | None:
    if _options is None:
        return None
    model = getattr(model._meta, "concrete_model", model) or model
    try:
        return _plans[model]
    except KeyError:
        pass
    meta = model._meta
    plan = None
    # auto-created many-to-many tables: their changes are the m2m_changed events of the owner
    if _options.wants_model(meta.app_label, meta.model_name) and not (meta.abstract or meta.auto_created):
        label = f"{meta.app_label}.{meta.object_name}"
        fields = {f.name: f.attname for f in meta.concrete_fields if _options.wants_field(label, f.name)}
        resource_type = getattr(model, "__audit_resource_type__", None) or meta.db_table
        plan = ModelPlan(str(resource_type), fields)
    _plans[model] = plan
    return plan


def _values(instance: Any, plan: ModelPlan) -> dict[str, Any]:
    loaded = instance.__dict__
    return {name: loaded[att] for name, att in plan.fields.items() if att in loaded}


def _later(using: str | None, changes: list[Change] | list[Rows]) -> None:
    if changes:
        transaction.on_commit(partial(emit, changes), using=using)


def _change(action: str, plan: ModelPlan, pk: Any, changes: Any, extra: Any = None) -> Change:
    return Change(
        action, plan.resource_type, "" if pk is None else str(pk), changes, current_context(), extra or {}
    )


# -- signals ------------------------------------------------------------------------------------


def _on_init(sender: type, instance: Any, **_: Any) -> None:
    plan = plan_for(sender)
    if plan is not None:
        instance.__dict__[_SNAPSHOT] = _values(instance, plan)


def _on_save(
    sender: type,
    instance: Any,
    created: bool,
    raw: bool = False,
    using: str | None = None,
    update_fields: Any = None,
    **_: Any,
) -> None:
    try:
        plan = plan_for(sender)
        if plan is None or raw:
            return
        now = _values(instance, plan)
        if created:
            changes = {k: {"old": None, "new": v} for k, v in now.items() if v is not None}
        else:
            before = instance.__dict__.get(_SNAPSHOT, {})
            saved = (
                now
                if update_fields is None
                else {k: v for k, v in now.items() if k in update_fields or plan.fields[k] in update_fields}
            )
            changes = {
                k: {"old": before.get(k), "new": v}
                for k, v in saved.items()
                if k in before and before[k] != v
            }
            now = {**before, **saved}  # what is not saved keeps its stored value
        instance.__dict__[_SNAPSHOT] = now
        if created or changes:
            _later(using, [_change("create" if created else "update", plan, instance.pk, changes)])
    except Exception as exc:
        note_error(exc)


def _on_delete(sender: type, instance: Any, using: str | None = None, origin: Any = None, **_: Any) -> None:
    try:
        plan = plan_for(sender)
        if plan is None:
            return
        old = {k: {"old": v, "new": None} for k, v in _values(instance, plan).items() if v is not None}
        extra = _BULK if isinstance(origin, models.QuerySet) else None
        _later(using, [_change("delete", plan, instance.pk, old, extra)])
    except Exception as exc:
        note_error(exc)


def _m2m_field(instance: Any, through: type) -> str | None:
    for field in instance._meta.many_to_many:
        if field.remote_field.through is through:
            return field.name
    return None


def _on_m2m(
    sender: type, instance: Any, action: str, reverse: bool, pk_set: Any, using: str | None = None, **_: Any
) -> None:
    try:
        plan = plan_for(type(instance))
        if plan is None or reverse:
            return
        name = _m2m_field(instance, sender)
        if name is None or not (_options and _options.wants_field(_label(instance), name)):
            return
        stash = instance.__dict__.setdefault(_M2M_BEFORE, {})
        if action.startswith("pre_"):
            stash[name] = {str(pk) for pk in getattr(instance, name).values_list("pk", flat=True)}
            return
        before = stash.pop(name, set())
        ids = {str(pk) for pk in (pk_set or ())}
        after = before | ids if action == "post_add" else before - ids if action == "post_remove" else set()
        if after != before:
            changes = {name: {"old": sorted(before), "new": sorted(after)}}
            _later(using, [_change("update", plan, instance.pk, changes)])
    except Exception as exc:
        note_error(exc)


def _label(instance: Any) -> str:
    return f"{instance._meta.app_label}.{instance._meta.object_name}"


# -- queryset methods without signals -----------------------------------------------------------


def _set_value(value: Any) -> Any:
    return str(value) if isinstance(value, Combinable) else value


def _wrap_update(original: Any) -> Any:
    @wraps(original)
    def update(self: models.QuerySet, **kwargs: Any) -> int:
        plan = plan_for(self.model)
        if plan is None or _inside_bulk.get():
            return original(self, **kwargs)
        with transaction.atomic(using=self.db, savepoint=False):
            pks = list(self.values_list("pk", flat=True))
            count = original(self, **kwargs)
            new = changes_json(
                {k: {"old": None, "new": _set_value(v)} for k, v in kwargs.items() if k in plan.fields}
            )
            _later(self.db, [Rows("update", plan.resource_type, (pks,), new, current_context(), _BULK)])
        return count

    return update


def _wrap_bulk_create(original: Any) -> Any:
    @wraps(original)
    def bulk_create(self: models.QuerySet, objs: Any, *args: Any, **kwargs: Any) -> Any:
        created = original(self, objs, *args, **kwargs)
        try:
            _bulk_created(self, created)
        except Exception as exc:  # the rows are written: auditing them must not fail the call
            note_error(exc)
        return created

    return bulk_create


def _wrap_bulk_update(original: Any) -> Any:
    @wraps(original)
    def bulk_update(self: models.QuerySet, objs: Any, fields: Any, *args: Any, **kwargs: Any) -> Any:
        objs = list(objs)
        token = _inside_bulk.set(True)
        try:
            result = original(self, objs, fields, *args, **kwargs)
        finally:
            _inside_bulk.reset(token)
        try:
            _bulk_updated(self, objs, fields)
        except Exception as exc:
            note_error(exc)
        return result

    return bulk_update


def _bulk_created(qs: models.QuerySet, created: Any) -> None:
    plan = plan_for(qs.model)
    if plan is None:
        return
    changes = []
    for obj in created:
        now = _values(obj, plan)
        obj.__dict__[_SNAPSHOT] = now
        new = {k: {"old": None, "new": v} for k, v in now.items() if v is not None}
        changes.append(_change("create", plan, obj.pk, new, _BULK))
    _later(qs.db, changes)


def _bulk_updated(qs: models.QuerySet, objs: list[Any], fields: Any) -> None:
    plan = plan_for(qs.model)
    if plan is None:
        return
    changes = []
    for obj in objs:
        before = obj.__dict__.get(_SNAPSHOT, {})
        now = _values(obj, plan)
        diff = {
            k: {"old": before.get(k), "new": now[k]}
            for k in fields
            if k in now and before.get(k, object()) != now[k]
        }
        obj.__dict__[_SNAPSHOT] = {**before, **now}
        if diff:
            changes.append(_change("update", plan, obj.pk, diff, _BULK))
    _later(qs.db, changes)


# -- admin actions ------------------------------------------------------------------------------


def _wrap_response_action(original: Any) -> Any:
    @wraps(original)
    def response_action(self: Any, request: Any, queryset: Any) -> Any:
        from django.contrib.admin import helpers

        action = request.POST.get("action")
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        response = original(self, request, queryset)
        # a redirect: the action ran (a confirmation page or a download answers 200)
        if action and response is not None and getattr(response, "status_code", 0) == 302:
            plan = plan_for(self.model)
            record(
                action="execute",
                resource_type=plan.resource_type if plan else self.model._meta.db_table,
                resource_id=",".join(selected),
                reason=f"admin action {action}",
                attributes={"audit.admin.action": action, "audit.row_count": len(selected)},
            )
        return response

    return response_action


_installed = False


def install(options: DjangoOptions) -> None:
    """Connect the signals of every tracked model and wrap the queryset and admin methods (once)."""
    global _options, _installed
    _options = options
    _plans.clear()
    for model in apps.get_models():
        if plan_for(model) is None:
            continue
        post_init.connect(_on_init, sender=model, dispatch_uid=f"otel_audit_init_{model._meta.label}")
        post_save.connect(_on_save, sender=model, dispatch_uid=f"otel_audit_save_{model._meta.label}")
        post_delete.connect(_on_delete, sender=model, dispatch_uid=f"otel_audit_delete_{model._meta.label}")
    m2m_changed.connect(_on_m2m, dispatch_uid="otel_audit_m2m")
    if _installed:
        return
    _installed = True
    qs = models.QuerySet
    qs.update = _wrap_update(qs.update)  # type: ignore[method-assign]
    qs.bulk_create = _wrap_bulk_create(qs.bulk_create)  # type: ignore[method-assign]
    qs.bulk_update = _wrap_bulk_update(qs.bulk_update)  # type: ignore[method-assign]
    if apps.is_installed("django.contrib.admin"):
        from django.contrib.admin import ModelAdmin

        ModelAdmin.response_action = _wrap_response_action(ModelAdmin.response_action)  # type: ignore[method-assign]
