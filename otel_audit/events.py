"""Ready-made events for what every compliance regime asks to be logged.

Authentication events use resource type ``user`` (event names ``audit.user.login``,
``audit.user.logout``) with the user id as resource id. Permission changes use actions
``grant``/``revoke`` on a resource such as a ``role``, naming the permission and the grantee.
Every helper takes ``record()``'s keyword arguments (``user_id=``, ``tenant_id=``, ``reason=``,
``attributes={...}``…) and returns the event id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from otel_audit import attributes as attr
from otel_audit.context import current_context
from otel_audit.recorder import record

USER = "user"


def login_success(user_id: str, **kw: Any) -> str:
    """``audit.user.login``, outcome success; the actor is ``user_id``."""
    return record(action="login", resource_type=USER, resource_id=user_id, user_id=user_id, **kw)


def login_failure(
    user_id: str = "", *, reason: str | None = None, outcome: str = "failure", **kw: Any
) -> str:
    """``audit.user.login`` that failed. ``user_id`` is the claimed identity (``""`` if unknown);
    ``outcome="denied"`` for a locked or disabled account."""
    return record(
        action="login",
        resource_type=USER,
        resource_id=user_id,
        outcome=outcome,
        reason=reason,
        user_id=user_id,
        **kw,
    )


def logout(user_id: str | None = None, **kw: Any) -> str:
    """``audit.user.logout``; ``user_id`` defaults to the actor of the current request."""
    if user_id is None:
        user_id = current_context().user_id or ""
    return record(action="logout", resource_type=USER, resource_id=user_id, user_id=user_id, **kw)


def sensitive_read(
    resource_type: str, resource_id: Any, fields: Iterable[str] | None = None, **kw: Any
) -> str:
    """A read of personal or otherwise protected data; ``fields`` names what was disclosed."""
    if fields is not None:
        kw["attributes"] = {**kw.get("attributes", {}), attr.FIELDS: [str(f) for f in fields]}
    return record(action="read", resource_type=resource_type, resource_id=resource_id, **kw)


def created(resource_type: str, resource_id: Any, after: Mapping[str, Any] | None = None, **kw: Any) -> str:
    """``create``; ``after`` (the new state) becomes the changes with ``old: None``."""
    return record(action="create", resource_type=resource_type, resource_id=resource_id, after=after, **kw)


def updated(
    resource_type: str,
    resource_id: Any,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    **kw: Any,
) -> str:
    """``update`` with the diff of ``before`` and ``after``."""
    return record(
        action="update",
        resource_type=resource_type,
        resource_id=resource_id,
        before=before,
        after=after,
        **kw,
    )


def deleted(resource_type: str, resource_id: Any, before: Mapping[str, Any] | None = None, **kw: Any) -> str:
    """``delete``; ``before`` (the removed state) becomes the changes with ``new: None``."""
    return record(action="delete", resource_type=resource_type, resource_id=resource_id, before=before, **kw)


def permission_granted(
    resource_type: str, resource_id: Any, *, permission: str, grantee: str, **kw: Any
) -> str:
    """``grant`` of ``permission`` on the resource (e.g. a ``role``) to ``grantee``."""
    return _permission("grant", resource_type, resource_id, permission, grantee, kw)


def permission_revoked(
    resource_type: str, resource_id: Any, *, permission: str, grantee: str, **kw: Any
) -> str:
    """``revoke`` of ``permission`` on the resource from ``grantee``."""
    return _permission("revoke", resource_type, resource_id, permission, grantee, kw)


def _permission(
    action: str, resource_type: str, resource_id: Any, permission: str, grantee: str, kw: dict[str, Any]
) -> str:
    kw["attributes"] = {**kw.get("attributes", {}), attr.PERMISSION: permission, attr.GRANTEE: grantee}
    return record(action=action, resource_type=resource_type, resource_id=resource_id, **kw)
