"""clickhouse-go's HTTP handshake, answered in the Native layout it decodes.

clickhouse-go (the driver inside Grafana's ClickHouse plugin) opens an HTTP connection with
``SELECT displayName(), version(), revision(), timezone()``, sends
``client_protocol_version=54460`` and decodes that first answer at that revision: a block-info
header, then per column its name, type and a "custom serialization" flag byte before the data
(clickhouse-go lib/proto/block.go ``Block.Decode``). Every later answer it decodes at the
``revision()`` the handshake returned. chDB writes Native as for revision 0 (no block info, no
flag bytes), so the handshake is encoded here, reporting revision 0: from then on the driver
reads chDB's own Native output unchanged.
"""

from __future__ import annotations

import struct

HELLO = "SELECT displayName(), version(), revision(), timezone()"
#: ClickHouse's DBMS_MIN_REVISION_WITH_CUSTOM_SERIALIZATION
REVISION_WITH_CUSTOM_SERIALIZATION = 54454
#: the revision the handshake reports: chDB's Native output is the revision-0 layout
REPORTED_REVISION = 0


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _uvarint(len(raw)) + raw


def hello_block(display_name: str, version: str, timezone: str, client_revision: int) -> bytes:
    """The handshake's one-row answer in Native, laid out for ``client_revision``."""
    out = bytearray()
    if client_revision > 0:
        # block info: field 1 is_overflows=false, field 2 bucket_num=-1, end marker 0
        out += _uvarint(1) + b"\x00" + _uvarint(2) + struct.pack("<i", -1) + _uvarint(0)
    columns = (
        ("displayName()", "String", _string(display_name)),
        ("version()", "String", _string(version)),
        ("revision()", "UInt32", struct.pack("<I", REPORTED_REVISION)),
        ("timezone()", "String", _string(timezone)),
    )
    out += _uvarint(len(columns)) + _uvarint(1)
    for name, type_name, data in columns:
        out += _string(name) + _string(type_name)
        if client_revision >= REVISION_WITH_CUSTOM_SERIALIZATION:
            out += b"\x00"  # no custom serialization
        out += data
    return bytes(out)
