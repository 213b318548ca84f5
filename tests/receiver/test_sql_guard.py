"""guard.check on parse trees as ClickHouse prints them (``EXPLAIN AST``): the rules alone,
without an engine (test_sql_endpoint.py runs them on chDB's own parser)."""

from __future__ import annotations

import pytest

from receiver.chhttp.guard import ACCESS_DENIED, READONLY, Refused, check

ALLOWED = frozenset({"audit_events", "audit_checkpoints"})

SELECT = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Function count (alias n) (children 1)
     ExpressionList
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier audit.audit_events
"""


def refused(tree: str) -> int:
    with pytest.raises(Refused) as info:
        check(tree, "audit", ALLOWED)
    return info.value.code


def test_plain_select_and_format():
    assert check(SELECT, "audit", ALLOWED) is None
    assert check(SELECT + " Identifier Native\n", "audit", ALLOWED) == "Native"
    assert check(SELECT.replace("audit.audit_events", "audit_events"), "audit", ALLOWED) is None


def test_refusals():
    assert refused("InsertQuery   audit.audit_events (children 1)\n Identifier x\n") == READONLY
    assert refused(SELECT + " Literal 'out.csv'\n") == ACCESS_DENIED  # INTO OUTFILE
    assert refused(SELECT + " Literal 'out.csv'\n Identifier CSV\n") == ACCESS_DENIED
    assert refused(SELECT + " Identifier Template\n") == 73
    assert refused(SELECT + " Set\n") == READONLY  # SETTINGS
    assert refused(SELECT.replace("audit.audit_events", "system.users")) == ACCESS_DENIED
    assert refused(SELECT.replace("audit.audit_events", "other.audit_events")) == ACCESS_DENIED
    assert (
        refused(SELECT.replace("TableIdentifier audit.audit_events", "Function file (children 1)"))
        == ACCESS_DENIED
    )
    assert refused(SELECT.replace("Function count", "Function dictGet")) == ACCESS_DENIED
    assert refused(SELECT.replace("Function count", "Function FILE")) == ACCESS_DENIED
    assert (
        refused(SELECT.replace("ExpressionList\n", "ProjectionSelectQuery\n")) == ACCESS_DENIED
    )  # unknown node
    assert refused("") == 62


def test_an_identifier_smuggling_lines_cannot_hide_a_refused_node():
    # `x\n Identifier JSON` as an alias prints two lines; the real nodes are still all checked
    smuggled = SELECT.replace("(alias n)", "(alias x\n Identifier JSON)") + " Literal 'out.csv'\n"
    assert refused(smuggled) in (73, ACCESS_DENIED)  # refused either way
    bad_table = SELECT.replace("audit.audit_events", "system.users\n      TableIdentifier audit.audit_events")
    assert refused(bad_table) == ACCESS_DENIED


IN_TABLE = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Literal UInt64_1
   Function in (children 1)
    ExpressionList (children 2)
     Literal 'a'
     Identifier {rhs}
"""


def test_the_right_hand_side_of_in_is_a_table_reference():
    from receiver.chhttp.guard import tables_of

    assert refused(IN_TABLE.format(rhs="system.users")) == ACCESS_DENIED
    assert refused(IN_TABLE.format(rhs="audit_shadow")) == ACCESS_DENIED
    assert refused(IN_TABLE.format(rhs="system.users").replace("Function in", "Function globalNotIn")) == 497
    assert check(IN_TABLE.format(rhs="audit_events"), "audit", ALLOWED) is None
    assert tables_of(IN_TABLE.format(rhs="audit.audit_events")) == {"audit.audit_events"}
    # the left-hand side is a column, not a table
    left = IN_TABLE.replace(
        "     Literal 'a'\n     Identifier {rhs}", "     Identifier users\n     Literal 'a'"
    )
    assert check(left, "audit", ALLOWED) is None and tables_of(left) == set()


def test_functions_are_an_allow_list():
    assert refused(SELECT.replace("Function count", "Function hostName")) == ACCESS_DENIED
    assert refused(SELECT.replace("Function count", "Function someFutureFunction")) == ACCESS_DENIED
    assert check(SELECT.replace("Function count", "Function COUNT"), "audit", ALLOWED) is None


META = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Identifier {column}
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier system.tables
"""


def test_metadata_columns_are_an_allow_list():
    hidden = frozenset({"engine_full", "create_table_query"})
    assert check(META.format(column="name"), "audit", ALLOWED, hidden_columns=hidden) is None
    for column in ("engine_full", "t.engine_full", "data_paths", "engine_full (alias engine_full)"):
        with pytest.raises(Refused):
            check(META.format(column=column), "audit", ALLOWED, hidden_columns=hidden)
    with pytest.raises(Refused):
        check(META.replace("Identifier {column}", "Asterisk"), "audit", ALLOWED, hidden_columns=hidden)
