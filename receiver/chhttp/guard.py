"""What the SQL endpoint accepts, decided on ClickHouse's own parse tree (``EXPLAIN AST``).

The engine formats the request (``formatQuerySingleLine``: one statement, or a syntax error)
and prints its AST; this module walks that tree and refuses, with ClickHouse's error codes:

- anything but a SELECT (INSERT, ALTER, SET, USE, SHOW, EXPLAIN, ...): 164 READONLY;
- ``SETTINGS`` anywhere (the engine itself refuses it first on a ``readonly=1`` session): 164;
- ``INTO OUTFILE`` (it writes files even under ``readonly=1``): 497 ACCESS_DENIED;
- table functions (``file()``, ``url()``, ``numbers()``, ...): 497;
- any table but the audit database's allowed tables and a few metadata tables: 497, wherever
  the table is named: ``FROM``, ``JOIN``, subqueries, and the right-hand side of ``IN``
  (``x IN system.users`` reads a table: ClickHouse parses it as an identifier);
- any function not on the allow-list (``chhttp/functions.py``): 497;
- in a query on metadata tables, any column not on :data:`SYSTEM_COLUMNS` (``engine_full``,
  ``create_table_query`` show other tenants' holds and retention; paths, sizes): 497;
- any parse-tree node type not on the allow-list below (new syntax is refused, not guessed).

Rules are deny-on-sight, line by line, so an identifier that smuggles a newline into the
printed tree can add lines but never hide a refused one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from receiver.chhttp.functions import ALLOWED_FUNCTIONS, IN_FUNCTIONS

READONLY = 164
ACCESS_DENIED = 497
SYNTAX_ERROR = 62
UNKNOWN_FORMAT = 73

NODE_TYPES = frozenset(
    {
        "SelectWithUnionQuery",
        "SelectIntersectExceptQuery",
        "SelectQuery",
        "ExpressionList",
        "TablesInSelectQuery",
        "TablesInSelectQueryElement",
        "TableExpression",
        "TableIdentifier",
        "TableJoin",
        "ArrayJoin",
        "Subquery",
        "Function",
        "Identifier",
        "Literal",
        "Asterisk",
        "QualifiedAsterisk",
        "ColumnsRegexpMatcher",
        "ColumnsListMatcher",
        "QualifiedColumnsRegexpMatcher",
        "QualifiedColumnsListMatcher",
        "ColumnsTransformerList",
        "ColumnsExceptTransformer",
        "ColumnsReplaceTransformer",
        "ColumnsApplyTransformer",
        "OrderByElement",
        "WithElement",
        "WindowDefinition",
        "WindowListElement",
        "SampleRatio",
        "InterpolateElement",
        "QueryParameter",
        "DataType",
        "NameTypePair",
    }
)

#: metadata tables readable by every SQL user (rows scoped to the audit database by the session)
SYSTEM_TABLES = frozenset({"one", "tables", "columns", "databases", "settings", "functions"})

#: metadata columns a query may name (what Grafana's plugin lists: databases, tables, columns
#: and their types and keys; settings and functions for its editor)
SYSTEM_COLUMNS = frozenset(
    {
        "database",
        "table",
        "name",
        "engine",
        "is_temporary",
        "comment",
        "partition_key",
        "sorting_key",
        "primary_key",
        "sampling_key",
        "type",
        "position",
        "default_kind",
        "default_expression",
        "is_in_partition_key",
        "is_in_sorting_key",
        "is_in_primary_key",
        "is_in_sampling_key",
        "column",
        "value",
        "changed",
        "description",
        "min",
        "max",
        "readonly",
        "default",
        "is_obsolete",
        "is_aggregate",
        "case_insensitive",
        "alias_to",
        "dummy",
    }
)

#: output formats a client may ask for (binary and text; none writes anywhere)
FORMATS = frozenset(
    {
        "Native",
        "Arrow",
        "ArrowStream",
        "Parquet",
        "RowBinary",
        "RowBinaryWithNamesAndTypes",
        "TabSeparated",
        "TabSeparatedWithNames",
        "TabSeparatedWithNamesAndTypes",
        "TSV",
        "TSVWithNames",
        "TSVWithNamesAndTypes",
        "TSVRaw",
        "CSV",
        "CSVWithNames",
        "JSON",
        "JSONCompact",
        "JSONEachRow",
        "JSONCompactEachRow",
        "JSONStringsEachRow",
        "Values",
        "Pretty",
        "PrettyCompact",
    }
)

_LINE = re.compile(r"^( *)([A-Za-z]+)(?: (.*?))?(?: \(children (\d+)\))?$")
_ALIAS = re.compile(r" \(alias (.*)\)$")


class Refused(Exception):
    """The query is not allowed: a ClickHouse error code and a message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Node:
    depth: int
    kind: str
    name: str
    alias: str = ""


@dataclass(frozen=True, slots=True)
class Placed:
    """A node with its parent, grandparent and position among its parent's children."""

    node: Node
    parent: Node | None
    grandparent: Node | None
    index: int


def parse_ast(text: str) -> list[Node]:
    nodes: list[Node] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        match = _LINE.match(raw)
        if match is None:
            raise Refused(ACCESS_DENIED, f"unrecognised parse tree line: {raw.strip()[:80]!r}")
        indent, kind, rest, _children = match.groups()
        alias = _ALIAS.search(rest or "")
        name = _ALIAS.sub("", rest or "")
        nodes.append(Node(len(indent), kind, name, alias.group(1) if alias else ""))
    if not nodes:
        raise Refused(SYNTAX_ERROR, "empty query")
    return nodes


def walk(nodes: list[Node]) -> Iterator[Placed]:
    stack: list[list[Node | int]] = []  # [node, children seen so far]
    for node in nodes:
        del stack[node.depth :]
        parent = stack[-1] if stack else None
        index = 0
        if parent is not None:
            index = int(parent[1])  # type: ignore[call-overload]
            parent[1] = index + 1  # type: ignore[operator]
        grandparent = stack[-2][0] if len(stack) > 1 else None
        yield Placed(node, parent[0] if parent else None, grandparent, index)  # type: ignore[arg-type]
        stack.append([node, 0])


def table_references(nodes: list[Node]) -> Iterator[str]:
    """Every table a tree reads: ``TableIdentifier`` nodes and the bare identifier on the
    right-hand side of ``IN`` (``x IN t`` reads table ``t``)."""
    for placed in walk(nodes):
        node = placed.node
        if node.kind == "TableIdentifier":
            yield node.name
        elif (
            node.kind == "Identifier"
            and placed.index == 1
            and placed.parent is not None
            and placed.parent.kind == "ExpressionList"
            and placed.grandparent is not None
            and placed.grandparent.kind == "Function"
            and placed.grandparent.name.lower() in IN_FUNCTIONS
        ):
            yield node.name


def check(
    ast_text: str,
    database: str,
    allowed_tables: frozenset[str],
    system_tables: frozenset[str] = SYSTEM_TABLES,
    hidden_columns: frozenset[str] = frozenset(),
) -> str | None:
    """Refuse what the endpoint must not run; returns the query's FORMAT clause, if any.
    ``hidden_columns``: every column of the metadata tables not on :data:`SYSTEM_COLUMNS`
    (the session reads them from the engine, so a new engine's new columns are hidden too)."""
    nodes = parse_ast(ast_text)
    root = nodes[0]
    if root.kind != "SelectWithUnionQuery" or root.depth != 0:
        raise Refused(READONLY, f"only SELECT queries are allowed here (got {root.kind})")
    fmt: str | None = None
    top_level = 0
    for placed in walk(nodes):
        node, parent = placed.node, placed.parent
        if node.kind == "Set" or node.kind.startswith("Settings"):
            raise Refused(READONLY, "SETTINGS are not allowed: the limits of this endpoint are fixed")
        if node.kind not in NODE_TYPES:
            raise Refused(ACCESS_DENIED, f"{node.kind} is not allowed in a query on this endpoint")
        if node.depth == 1:
            top_level += 1
        if node.depth == 1 and top_level > 1:
            # the root's children after its select list: FORMAT <name> or INTO OUTFILE 'path'
            if node.kind == "Identifier" and fmt is None:
                fmt = node.name
                if fmt not in FORMATS:
                    raise Refused(UNKNOWN_FORMAT, f"format {fmt} is not available on this endpoint")
            else:
                raise Refused(ACCESS_DENIED, "INTO OUTFILE is not allowed: this endpoint writes nothing")
        if node.kind == "Function":
            _check_function(node.name, parent)
    tables = list(table_references(nodes))
    for name in tables:
        _check_table(name, database, allowed_tables, system_tables)
    if any(name.rpartition(".")[0] == "system" for name in tables):
        _check_metadata_columns(nodes, top_level, hidden_columns)
    return fmt


def tables_of(ast_text: str) -> set[str]:
    """The table names a parse tree reads (as written: ``table`` or ``db.table``), ``IN``
    right-hand sides included."""
    return set(table_references(parse_ast(ast_text)))


def _check_function(name: str, parent: Node | None) -> None:
    if parent is not None and parent.kind == "TableExpression":
        raise Refused(ACCESS_DENIED, f"table function {name}() is not allowed: read the audit tables")
    if name.lower() not in ALLOWED_FUNCTIONS:
        raise Refused(ACCESS_DENIED, f"function {name}() is not allowed on this endpoint")


def _check_metadata_columns(nodes: list[Node], top_level: int, hidden: frozenset[str]) -> None:
    """A query on metadata tables names its columns: no ``*`` or ``COLUMNS(...)`` (but
    ``count(*)``), and only :data:`SYSTEM_COLUMNS` or the query's own aliases."""
    aliases = {node.alias for node in nodes if node.alias} - hidden
    format_clause = nodes[-1] if top_level > 1 and nodes[-1].depth == 1 else None
    for placed in walk(nodes):
        node = placed.node
        if node is format_clause:
            continue
        if node.kind == "Asterisk":
            grand = placed.grandparent
            if grand is not None and grand.kind == "Function" and grand.name.lower() == "count":
                continue
        if node.kind in ("Asterisk", "QualifiedAsterisk") or node.kind.startswith(
            ("Columns", "QualifiedColumns")
        ):
            raise Refused(ACCESS_DENIED, "name the metadata columns you need (no * on system tables)")
        if node.kind != "Identifier":
            continue
        column = node.name.rpartition(".")[2]
        if column in hidden or (column not in SYSTEM_COLUMNS and column not in aliases):
            raise Refused(ACCESS_DENIED, f"column {column} of the metadata tables is not readable here")


def _check_table(name: str, database: str, allowed: frozenset[str], system_tables: frozenset[str]) -> None:
    db, _, table = name.rpartition(".")
    if db in ("", database) and table in allowed:
        return
    if db == "system" and table in system_tables:
        return
    raise Refused(ACCESS_DENIED, f"Not enough privileges: {name} is not readable on this endpoint")
