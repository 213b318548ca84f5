"""What the SQL endpoint accepts, decided on ClickHouse's own parse tree (``EXPLAIN AST``).

The engine formats the request (``formatQuerySingleLine``: one statement, or a syntax error)
and prints its AST; this module walks that tree and refuses, with ClickHouse's error codes:

- anything but a SELECT (INSERT, ALTER, SET, USE, SHOW, EXPLAIN, ...): 164 READONLY;
- ``SETTINGS`` anywhere (the engine itself refuses it first on a ``readonly=1`` session): 164;
- ``INTO OUTFILE`` (it writes files even under ``readonly=1``): 497 ACCESS_DENIED;
- table functions (``file()``, ``url()``, ``numbers()``, ...): 497;
- any table but the audit database's allowed tables and a few metadata tables: 497;
- functions that reach outside the query (``file``, dictionaries, ``sleep``, settings): 497;
- any parse-tree node type not on the allow-list below (new syntax is refused, not guessed).

Rules are deny-on-sight, line by line, so an identifier that smuggles a newline into the
printed tree can add lines but never hide a refused one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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

_DENIED_FUNCTIONS = frozenset(
    {
        "file",
        "sleep",
        "sleepeachrow",
        "getsetting",
        "getsettingordefault",
        "getserversetting",
        "getmergetreesetting",
        "getmacro",
        "getclienthttpheader",
        "showcertificate",
        "catboostevaluate",
        "naivebayesclassifier",
        "currentprofiles",
        "enabledprofiles",
        "defaultprofiles",
        "currentroles",
        "enabledroles",
        "defaultroles",
        "input",
        "hascolumnintable",
    }
)
_DENIED_PREFIXES = ("dict", "joinget", "filesystem", "transaction")
_LINE = re.compile(r"^( *)([A-Za-z]+)(?: (.*?))?(?: \(children (\d+)\))?$")
_ALIAS = re.compile(r" \(alias .*\)$")


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


def parse_ast(text: str) -> list[Node]:
    nodes: list[Node] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        match = _LINE.match(raw)
        if match is None:
            raise Refused(ACCESS_DENIED, f"unrecognised parse tree line: {raw.strip()[:80]!r}")
        indent, kind, rest, _children = match.groups()
        name = _ALIAS.sub("", rest or "")
        nodes.append(Node(len(indent), kind, name))
    if not nodes:
        raise Refused(SYNTAX_ERROR, "empty query")
    return nodes


def check(
    ast_text: str,
    database: str,
    allowed_tables: frozenset[str],
    system_tables: frozenset[str] = SYSTEM_TABLES,
) -> str | None:
    """Refuse what the endpoint must not run; returns the query's FORMAT clause, if any."""
    nodes = parse_ast(ast_text)
    root = nodes[0]
    if root.kind != "SelectWithUnionQuery" or root.depth != 0:
        raise Refused(READONLY, f"only SELECT queries are allowed here (got {root.kind})")
    fmt: str | None = None
    top_level = 0
    parents: list[Node] = []
    for node in nodes:
        del parents[node.depth :]
        parent = parents[-1] if parents else None
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
        if node.kind == "TableIdentifier":
            _check_table(node.name, database, allowed_tables, system_tables)
        parents.append(node)
    return fmt


def tables_of(ast_text: str) -> set[str]:
    """The table names a parse tree reads (as written: ``table`` or ``db.table``)."""
    return {node.name for node in parse_ast(ast_text) if node.kind == "TableIdentifier"}


def _check_function(name: str, parent: Node | None) -> None:
    if parent is not None and parent.kind == "TableExpression":
        raise Refused(ACCESS_DENIED, f"table function {name}() is not allowed: read the audit tables")
    lowered = name.lower()
    if lowered in _DENIED_FUNCTIONS or lowered.startswith(_DENIED_PREFIXES):
        raise Refused(ACCESS_DENIED, f"function {name}() is not allowed on this endpoint")


def _check_table(name: str, database: str, allowed: frozenset[str], system_tables: frozenset[str]) -> None:
    db, _, table = name.rpartition(".")
    if db in ("", database) and table in allowed:
        return
    if db == "system" and table in system_tables:
        return
    raise Refused(ACCESS_DENIED, f"Not enough privileges: {name} is not readable on this endpoint")
