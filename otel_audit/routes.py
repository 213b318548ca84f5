"""Sensitive-route rules for the ASGI middleware: which requests produce an audit event, and how.

A rule names a route template (``/patients/{id}``, Starlette converters like ``{id:int}`` allowed)
or a path pattern (``*`` one segment, ``**`` any rest), the methods it covers (none = all), the
resource type, and optionally the action (default from the method) and the path parameter that
holds the resource id (default ``id``, else the last placeholder).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

_PLACEHOLDER = re.compile(r"\{(\w+)(?::(\w+))?\}")
_TOKEN = re.compile(r"\{\w+(?::\w+)?\}|\*\*|\*")

METHOD_ACTIONS: dict[str, str] = {
    "GET": "read",
    "HEAD": "read",
    "POST": "create",
    "PUT": "update",
    "PATCH": "update",
    "DELETE": "delete",
}
_DEFAULT_ACTION = "execute"


def action_for_method(method: str) -> str:
    """GET/HEAD → read, POST → create, PUT/PATCH → update, DELETE → delete, else execute."""
    return METHOD_ACTIONS.get(method.upper(), _DEFAULT_ACTION)


def outcome_for_status(status: int | None, raised: bool = False) -> str:
    """2xx/3xx → success, 401/403 → denied, anything else (or an exception) → failure."""
    if raised or status is None:
        return "failure"
    if 200 <= status < 400:
        return "success"
    if status in (401, 403):
        return "denied"
    return "failure"


@lru_cache(maxsize=1024)
def normalize_template(template: str) -> str:
    """``/a/{id:int}`` → ``/a/{id}``: converters do not change which route it is."""
    return _PLACEHOLDER.sub(r"{\1}", template)


def _compile(path: str) -> re.Pattern[str]:
    parts: list[str] = []
    last = 0
    for match in _TOKEN.finditer(path):
        parts.append(re.escape(path[last : match.start()]))
        token = match.group(0)
        if token == "**":
            parts.append(".*")
        elif token == "*":
            parts.append("[^/]+")
        else:
            inner = _PLACEHOLDER.fullmatch(token)
            assert inner is not None
            name, converter = inner.group(1), inner.group(2)
            parts.append(f"(?P<{name}>.+)" if converter == "path" else f"(?P<{name}>[^/]+)")
        last = match.end()
    parts.append(re.escape(path[last:]))
    return re.compile("".join(parts))


@dataclass(frozen=True)
class SensitiveRoute:
    """One rule, e.g. ``SensitiveRoute(path="/patients/{id}", resource_type="patient", methods={"GET"})``."""

    path: str
    resource_type: str
    methods: Collection[str] = frozenset()
    action: str | None = None
    id_param: str | None = None
    _template: str = field(init=False, repr=False, compare=False)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or not self.resource_type:
            raise ValueError(f"SensitiveRoute needs a path starting with '/' and a resource type: {self!r}")
        methods = [self.methods] if isinstance(self.methods, str) else self.methods
        names = [m.group(1) for m in _PLACEHOLDER.finditer(self.path)]
        id_param = self.id_param or ("id" if "id" in names or not names else names[-1])
        object.__setattr__(self, "methods", frozenset(m.upper() for m in methods if m and m != "*"))
        object.__setattr__(self, "id_param", id_param)
        object.__setattr__(self, "_template", normalize_template(self.path))
        object.__setattr__(self, "_regex", _compile(self.path))

    def match(self, method: str, path: str, route: str | None, params: Mapping[str, object]) -> str | None:
        """The resource id (``""`` if none) when this rule covers the request, else ``None``.

        ``route`` is the framework's route template when known, ``params`` its path parameters;
        otherwise the rule's pattern is matched against the raw ``path``.
        """
        if self.methods and method.upper() not in self.methods:
            return None
        groups: dict[str, str] = {}
        if route is None or normalize_template(route) != self._template:
            found = self._regex.fullmatch(path)
            if found is None:
                return None
            groups = found.groupdict()
        key = self.id_param or ""
        value = params.get(key)
        if value is None:
            value = groups.get(key)
        return "" if value is None else str(value)

    def action_for(self, method: str) -> str:
        return self.action or action_for_method(method)


def parse_sensitive_routes(spec: str) -> list[SensitiveRoute]:
    """``"GET /patients/{id}=patient;DELETE,PUT /docs/{id}=document:delete"`` → rules.

    Each ``;``-separated item is ``[METHODS ]PATH=RESOURCE_TYPE[:ACTION]``; METHODS is a comma
    list or ``*`` (omitted: every method).
    """
    rules: list[SensitiveRoute] = []
    for item in (part.strip() for part in spec.split(";")):
        if not item:
            continue
        target, sep, kind = item.rpartition("=")
        if not sep or not target.strip() or not kind.strip():
            raise ValueError(
                f"bad sensitive route {item!r}: expected '[METHODS ]PATH=RESOURCE_TYPE[:ACTION]'"
            )
        words = target.split()
        methods, path = (words[0].split(","), words[1]) if len(words) == 2 else ([], words[0])
        resource_type, _, action = kind.strip().partition(":")
        rules.append(
            SensitiveRoute(path=path, resource_type=resource_type, methods=methods, action=action or None)
        )
    return rules
