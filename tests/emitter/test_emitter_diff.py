"""diff.py: change sets, flattening, redaction and JSON safety."""

from __future__ import annotations

import enum
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from uuid import UUID

from otel_audit.config import DEFAULT_REDACT
from otel_audit.diff import Redactor, build_changes, diff, dumps, flatten, json_safe, redact_changes

R = Redactor.of(DEFAULT_REDACT)


def test_changed_added_removed_and_unchanged_omitted() -> None:
    before = {"title": "a", "status": "draft", "gone": 1, "same": [1, 2]}
    after = {"title": "b", "status": "draft", "new": True, "same": [1, 2]}
    assert diff(before, after) == {
        "gone": {"old": 1, "new": None},
        "new": {"old": None, "new": True},
        "title": {"old": "a", "new": "b"},
    }
    assert diff(None, {"a": 1}) == {"a": {"old": None, "new": 1}}
    assert diff({"a": 1}, None) == {"a": {"old": 1, "new": None}}
    assert diff({}, {}) == {}


def test_nested_dicts_are_flattened() -> None:
    before = {"address": {"city": "Oslo", "zip": "0150", "geo": {"lat": 1}}}
    after = {"address": {"city": "Bergen", "zip": "0150", "geo": {"lat": 1, "lon": 2}}}
    assert diff(before, after) == {
        "address.city": {"old": "Oslo", "new": "Bergen"},
        "address.geo.lon": {"old": None, "new": 2},
    }
    assert flatten({"a": {}, "b": {"c": {}}}) == {"a": {}, "b.c": {}}


def test_redaction_by_name_case_and_any_segment() -> None:
    before = {
        "Password": "old",
        "profile": {"SSN": "1", "name": "A"},
        "secret": {"k": 1},
        "cardNumber": "4111",
    }
    after = {
        "Password": "new",
        "profile": {"SSN": "2", "name": "B"},
        "secret": {"k": 2},
        "cardNumber": "4222",
    }
    changes = diff(before, after, R)
    red = {"old": "[REDACTED]", "new": "[REDACTED]"}
    assert changes == {
        "Password": red,
        "cardNumber": red,
        "profile.SSN": red,
        "profile.name": {"old": "A", "new": "B"},
        "secret.k": red,
    }
    # an added sensitive field is redacted on both sides, too
    assert diff({}, {"api-key": "k"}, R) == {"api-key": red}
    assert "4111" not in dumps(changes) and "old" in dumps(changes)


def test_redaction_inside_lists_and_explicit_changes() -> None:
    before = {"users": [{"name": "a", "password": "p"}]}
    after = {"users": [{"name": "a", "password": "q"}]}
    changes = diff(before, after, R)
    assert changes == {
        "users": {
            "old": [{"name": "a", "password": "[REDACTED]"}],
            "new": [{"name": "a", "password": "[REDACTED]"}],
        }
    }
    assert redact_changes({"token": {"old": "a", "new": "b"}, "x": {"old": {"cvv": 1}, "new": 2}}, R) == {
        "token": {"old": "[REDACTED]", "new": "[REDACTED]"},
        "x": {"old": {"cvv": "[REDACTED]"}, "new": 2},
    }


def test_redactor_matches_segments_not_substrings() -> None:
    assert R.is_sensitive("billing.card_number")
    assert R.is_sensitive("CARD-NUMBER")
    assert not R.is_sensitive("password_hint_shown")
    assert not R.is_sensitive("tokens_used")


def test_build_changes_merges_explicit_over_diff() -> None:
    out = build_changes({"a": 1, "b": 1}, {"a": 2, "b": 2}, {"b": {"old": 0, "new": 9}}, R)
    assert out == {"a": {"old": 1, "new": 2}, "b": {"old": 0, "new": 9}}


class Color(enum.Enum):
    RED = "red"


def test_values_are_made_json_safe() -> None:
    when = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    uid = UUID("12345678-1234-5678-1234-567812345678")
    out = diff(
        {"price": Decimal("1.10"), "at": when},
        {
            "price": Decimal("1.20"),
            "at": date(2024, 5, 2),
            "id": uid,
            "tags": {"b", "a"},
            "c": Color.RED,
            "raw": b"\x00\x01",
            "nan": float("nan"),
        },
    )
    assert out["price"] == {"old": "1.10", "new": "1.20"}
    assert out["at"] == {"old": "2024-05-01T12:30:00+00:00", "new": "2024-05-02"}
    assert out["id"]["new"] == "12345678-1234-5678-1234-567812345678"
    assert out["tags"]["new"] == ["a", "b"]
    assert out["c"]["new"] == "red"
    assert out["raw"]["new"] == "AAE="
    assert out["nan"]["new"] == "nan"
    assert json.loads(dumps(out)) == out
    assert json_safe((1, {2: object})) == [1, {"2": str(object)}]
