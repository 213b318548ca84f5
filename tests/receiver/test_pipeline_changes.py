"""``audit.changes`` canonicalisation: the orjson path gives exactly the json module's text (or
the same rejection) for every input, and the texts senders actually send take the orjson path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.pipeline import changes
from receiver.pipeline.changes import InvalidChanges, canonical_changes, stdlib_changes


def _result(fn: Any, value: Any) -> tuple[str, str]:
    try:
        return "ok", fn(value)
    except InvalidChanges as exc:
        return "rejected", str(exc)
    except RecursionError:
        return "recursion", ""


def assert_same(value: Any) -> None:
    assert _result(canonical_changes, value) == _result(stdlib_changes, value)


_numbers = st.one_of(
    st.integers(min_value=-(10**17), max_value=10**17),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -0.0, 1e16, 1e-7, 2**63, -(2**63) - 1, 2**64, 10**18, 10**19 - 1, 123.0]),
)
_keys = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", "a", "B", "\uffff", "\U0001f600", "\u00e9", "\x7f", "\u2028", "\x00", '"', "\\"]),
)
_json = st.recursive(
    st.none() | st.booleans() | _numbers | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=600, deadline=None)
@given(
    st.dictionaries(_keys, _json, max_size=5),
    st.sampled_from([None, 0, 1, "\t"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")]),
)
def test_json_objects_in_any_formatting(obj: dict, indent: Any, sort: bool, ascii_: bool, seps: tuple):
    text = json.dumps(obj, indent=indent, sort_keys=sort, ensure_ascii=ascii_, separators=seps)
    assert_same(text)
    assert_same(" \n" + text + "\r\n\t ")


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet=st.sampled_from('{}[]",:0123456789.eE+-tfn ulr\\\x00\x1f\u00e9\U0001f600'), max_size=40)
)
def test_arbitrary_texts_are_rejected_alike(text: str):
    assert_same(text)
    assert_same("{" + text)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text(text: str):
    assert_same(text)
    assert_same(json.dumps({"k": text}, ensure_ascii=False))


@pytest.mark.parametrize(
    "text",
    [
        '{"b":1,"a":2,"b":3}',
        '{"a":{"y":1,"x":2},"a":{"z":0}}',
        '{"a":123456789012345678}',
        '{"a":1234567890123456789}',
        '{"a":18446744073709551615}',
        '{"a":18446744073709551616}',
        '{"a":-9223372036854775808}',
        '{"a":-9223372036854775809}',
        '{"a":1e16}',
        '{"a":1E400}',
        '{"a":1E16}',
        '{"a":1E+2}',
        '{"a":1E-5}',
        '{"a":10000000000000000.0}',
        '{"a":0.00001}',
        '{"a":12345678901234567.5}',
        '{"a":-0}',
        '{"a":NaN}',
        '{"a":Infinity}',
        '{"a":"\\ud800"}',
        '{"\\ud83d\\ude00":1,"\\uffff":2,"z":[{"y":1,"x":2}]}',
        '{"a":"\\/"}',
        '{"a":"\\u0000\\u001f\\u007f\\u2028\\b\\f\\n\\r\\t\\\\\\""}',
        '{"a":"\x01"}',
        "\ufeff{}",
        "{}\x0b",
        '{"a":1,}',
        "[" * 5000 + "]" * 5000,
        *(
            '{"a":' + "[" * depth + "]" * depth + "}"
            for depth in (200, 253, 254, 255, 300, 980, 995, 1023, 1024)
        ),
        *('{"a":' + '{"b":' * depth + "1" + "}" * depth + "}" for depth in (253, 254, 255, 1000)),
        '{"a":' + "[" * 2000 + "]" * 2000 + "}",
        "[]",
        '"x"',
        "1",
        "null",
        "",
        "{",
    ],
)
def test_edge_texts(text: str):
    assert_same(text)


@pytest.mark.parametrize(
    "value", [None, "", b"", 0, [], {}, {"b": {"old": 1, "new": b"\x00"}}, {"a": 1.5}, ["x"], 7, True]
)
def test_non_text_values_take_the_json_module_path(value: Any):
    assert_same(value)


def test_the_common_texts_take_the_orjson_path(monkeypatch: pytest.MonkeyPatch):
    def refuse(value: Any) -> str:
        raise AssertionError(f"json module path taken for {value!r}")

    monkeypatch.setattr(changes, "stdlib_changes", refuse)
    sent = '{"status":{"old":"draft","new":"sent"},"amount":{"old":1000,"new":1250}}   '
    assert (
        canonical_changes(sent) == '{"amount":{"new":1250,"old":1000},"status":{"new":"sent","old":"draft"}}'
    )
    assert canonical_changes('{"role": {"old": null, "new": ["admin", "é"]}}') == (
        '{"role":{"new":["admin","é"],"old":null}}'
    )
    with pytest.raises(InvalidChanges, match="larger than"):
        canonical_changes(json.dumps({"k": "v" * changes.MAX_CHANGES_CHARS}))


def test_larger_than_the_limit_is_rejected_alike():
    assert_same(json.dumps({"k": "v" * (changes.MAX_CHANGES_CHARS - 8)}))  # exactly at the limit
    assert_same(json.dumps({"k": "v" * (changes.MAX_CHANGES_CHARS - 7)}))


def test_without_orjson_the_json_module_does_it_all(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(changes, "orjson", None)
    for text in ('{"b":1,"a":{"y":[1,2],"x":null}}', "{", "[]", '{"a":1e-5}'):
        assert _result(canonical_changes, text) == _result(stdlib_changes, text)
    assert canonical_changes('{"b":1,"a":2}') == '{"a":2,"b":1}'
