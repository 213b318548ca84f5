"""Event ids made on the request path are canonical version-4 UUIDs, all different."""

from __future__ import annotations

import uuid

from otel_audit.recorder import new_event_id


def test_event_ids_are_canonical_random_uuids():
    ids = [new_event_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    variants = set()
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        variants.add(text[19])
    assert variants == set("89ab")
