"""Event schemas (SPEC section 12): per ``event_name`` a versioned JSON Schema over a record's attributes.

The same definitions serve the receiver (``schemas:`` in its config: reject or flag violations)
and the application's tests (``otel_audit.testing.assert_valid``). A schema file is JSON or YAML
holding either the list of entries or a mapping with a ``schemas:`` list (a receiver config file
works as is)::

    schemas:
      - event_name: audit.payment.update
        version: 2
        on_violation: reject          # or flag: stored, marked with audit.schema.violation
        schema:
          type: object
          required: [audit.resource.id]
          properties: {audit.resource.id: {pattern: "^pay_"}}

Validation sees ``audit.changes`` parsed (an object), so a schema can constrain changed fields.
The ``jsonschema`` package is imported on first use (the receiver extra installs it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_audit import attributes as attr

#: the attribute a flagged record is stored with: "<event_name> v<version>: <path>: <message>"
VIOLATION_ATTRIBUTE = "audit.schema.violation"
ON_VIOLATION = ("reject", "flag")


@dataclass(frozen=True)
class EventSchema:
    event_name: str
    schema: Mapping[str, Any]
    version: str = "1"
    on_violation: str = "reject"
    _validator: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.event_name.startswith(attr.EVENT_NAME_PREFIX):
            raise ValueError(f"schema event_name {self.event_name!r} must start with 'audit.'")
        if self.on_violation not in ON_VIOLATION:
            raise ValueError(f"on_violation must be reject or flag, not {self.on_violation!r}")
        from jsonschema.exceptions import SchemaError
        from jsonschema.validators import validator_for

        cls = validator_for(self.schema)
        try:
            cls.check_schema(self.schema)  # a broken schema fails at load, not on the first event
        except SchemaError as exc:
            path = "/".join(str(p) for p in exc.absolute_path) or "$"
            raise ValueError(f"{self.event_name}: not a valid JSON Schema at {path}: {exc.message}") from None
        object.__setattr__(self, "_validator", cls(self.schema))

    @property
    def label(self) -> str:
        return f"{self.event_name} v{self.version}"

    def violation(self, attributes: Mapping[str, Any]) -> str | None:
        """``"<path>: <message>"`` of the first violation (by jsonschema's relevance), else ``None``."""
        from jsonschema.exceptions import best_match

        error = best_match(self._validator.iter_errors(validation_view(attributes)))
        if error is None:
            return None
        path = "/".join(str(p) for p in error.absolute_path) or "$"
        return f"{path}: {error.message}"

    @classmethod
    def from_mapping(cls, entry: Mapping[str, Any]) -> EventSchema:
        unknown = set(entry) - {"event_name", "schema", "version", "on_violation"}
        if unknown:
            raise ValueError(f"unknown schema field(s): {', '.join(sorted(unknown))}")
        return cls(
            event_name=str(entry["event_name"]),
            schema=dict(entry["schema"]),
            version=str(entry.get("version", "1")),
            on_violation=str(entry.get("on_violation", "reject")),
        )


def validation_view(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes as the schema sees them: ``audit.changes`` JSON text parsed."""
    view = dict(attributes)
    changes = view.get(attr.CHANGES)
    if isinstance(changes, str):
        try:
            view[attr.CHANGES] = json.loads(changes)
        except ValueError:
            pass  # left as text: a schema expecting an object reports it
    return view


def parse_schemas(entries: Iterable[Mapping[str, Any]]) -> dict[str, EventSchema]:
    """``{event_name: EventSchema}``; one schema per event name."""
    out: dict[str, EventSchema] = {}
    for entry in entries:
        schema = EventSchema.from_mapping(entry)
        if schema.event_name in out:
            raise ValueError(f"two schemas for {schema.event_name}")
        out[schema.event_name] = schema
    return out


def read_schema_entries(path: str | Path) -> list[dict[str, Any]]:
    """The schema entries of a JSON or YAML file (a list, or a mapping with ``schemas:``)."""
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith(".json"):
        data: Any = json.loads(text)
    else:
        import yaml  # YAML files need PyYAML (the receiver extra has it)

        data = yaml.safe_load(text)
    if isinstance(data, Mapping):
        data = data.get("schemas") or []
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of schemas or a mapping with 'schemas:'")
    return data


def load_schema_file(path: str | Path) -> dict[str, EventSchema]:
    return parse_schemas(read_schema_entries(path))
