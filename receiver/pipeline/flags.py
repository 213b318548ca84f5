"""Stage 4b: marks a row whose text carries bidirectional controls (issue 13 item 13).

U+202A-U+202E, U+2066-U+2069, U+200E/U+200F and U+061C reorder the text around them when it is
displayed: ``tenant acme`` can be made to read ``emca tnanet``, a user name to look like
another. The value is stored as sent (it is evidence), and the row gets the attribute
``otel_audit.flags`` = ``bidi_control`` so that such events can be searched for; every display
(the admin UI, ``otel-audit query``'s table) shows the controls visibly instead of obeying them.

The check costs one join and ``str.isascii()`` for an all-ASCII row; only a row with other
characters is searched with the regular expression.
"""

from __future__ import annotations

import re
from itertools import chain
from operator import itemgetter
from typing import Any

from receiver.model import RECORD_COLUMNS

#: the attribute the receiver sets (a client-sent value of the same name is replaced)
FLAGS_ATTRIBUTE = "otel_audit.flags"
BIDI_FLAG = "bidi_control"
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
BIDI = re.compile(f"[{BIDI_CONTROLS}]")

_ATTRIBUTES = RECORD_COLUMNS.index("attributes")
#: the row's text columns (everything but created_at, http_status and the attributes)
_TEXTS = itemgetter(
    *(i for i, name in enumerate(RECORD_COLUMNS) if name not in ("created_at", "http_status", "attributes"))
)


#: what a terminal must not obey either: C0/C1 controls (escape sequences) and the bidi controls
_TERMINAL_UNSAFE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{BIDI_CONTROLS}]")


def visible(text: str) -> str:
    """``text`` for a terminal: every control character as a visible ``⟨U+202E⟩`` mark."""
    return _TERMINAL_UNSAFE.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", text)


def has_bidi(text: str) -> bool:
    return not text.isascii() and BIDI.search(text) is not None


def flag_bidi(row: tuple[Any, ...], service_name: str = "") -> tuple[Any, ...]:
    """``row``, or a copy with the flag attribute when any of its text (or its service) has a control."""
    extra = row[_ATTRIBUTES]
    if not has_bidi("".join(_TEXTS(row)) + service_name) and not (
        extra and has_bidi("".join(chain.from_iterable(extra)))
    ):
        return row
    attributes = [(k, v) for k, v in extra if k != FLAGS_ATTRIBUTE]
    attributes.append((FLAGS_ATTRIBUTE, BIDI_FLAG))
    return (*row[:_ATTRIBUTES], attributes, *row[_ATTRIBUTES + 1 :])
