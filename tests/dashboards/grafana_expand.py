"""Grafana + grafana-clickhouse-datasource query expansion, ported to Python for the tests.

The order and rules are the plugin's (read from grafana/clickhouse-datasource, v4.x):

1. frontend ``CHDatasource.applyTemplateVariables``: ``applyConditionalAll`` first (innermost
   last: it scans with ``lastIndexOf``; a variable whose value is ``''`` or ``$__all`` turns the
   macro into ``1=1``, otherwise into its first argument), then ``templateSrv.replace`` with the
   plugin's format function (arrays → ``'a','b'``; a single value → as is) unless the reference
   names a format (``${var:singlequote}``: Grafana's formatter, ``'`` escaped as ``\\'``);
2. backend ``macros.Interpolate`` (macropro with ``ClickHouseMacros``): comments stripped,
   nested macros innermost first, ``$__timeFilter(c)`` → ``c >= toDateTime(from) AND c <=
   toDateTime(to)``, ``$__fromTime``/``$__toTime`` → ``toDateTime(unix)``, ``$__interval_s`` → the
   interval in whole seconds (≥ 1), ``$__timeInterval(c)`` → ``toStartOfInterval(toDateTime(c),
   INTERVAL n second)``; unknown macros are left as they are (and then fail on the engine).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

ALL = "$__all"


@dataclass
class Var:
    """A template variable's current state: ``value`` is ``$__all``, a string or a list."""

    value: str | list[str]
    #: what "All" expands to (the variable's options), for query/custom variables
    options: tuple[str, ...] = ()

    def current_value_text(self) -> str:
        # JS: key.current.value.toString(): arrays join with ','
        return ",".join(self.value) if isinstance(self.value, list) else self.value

    def resolved(self) -> str | list[str]:
        if self.value == ALL or self.value == [ALL]:
            return list(self.options)
        return self.value


# -- 1. frontend ---------------------------------------------------------------------------


def _macro_args(query: str, args_index: int) -> list[str]:
    """Port of CHDatasource.getMacroArgs (bracket counting over ( ) , only)."""
    args: list[str] = []
    bracket = 0
    last = 1
    sub = query[args_index:]
    for match in re.finditer(r"\(|\)|,", sub):
        node = match.group(0)
        end = match.end()
        if node == "(":
            bracket += 1
        elif node == ")":
            bracket -= 1
        if node == "," and bracket == 1:
            args.append(sub[last : end - 1])
            last = end
        if bracket == 0:
            args.append(sub[last : end - 1])
            return args
    return []


def apply_conditional_all(raw: str, variables: dict[str, Var]) -> str:
    macro = "$__conditionalAll("
    index = raw.rfind(macro)
    while index != -1:
        params = _macro_args(raw, index + len(macro) - 1)
        if len(params) != 2:
            return raw
        match = re.search(r"(?<=\$\{)[\w\d]+(?=\})|(?<=\$)[\w\d]+", params[1].strip())
        phrase = params[0]
        if match:
            var = variables.get(match.group(0))
            value = var.current_value_text() if var is not None else None
            if value in ("", ALL):
                phrase = "1=1"
        raw = raw.replace(f"{macro}{params[0]},{params[1]})", phrase, 1)
        index = raw.rfind(macro)
    return raw


_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}")


def _format(value: str | list[str], fmt: str | None) -> str:
    if fmt is None:  # the plugin's own format function
        return "'" + "','".join(value) + "'" if isinstance(value, list) else value
    if fmt == "singlequote":
        items = value if isinstance(value, list) else [value]
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in items)
    if fmt == "sqlstring":
        items = value if isinstance(value, list) else [value]
        return ",".join("'" + v.replace("'", "''") + "'" for v in items)
    if fmt == "raw":
        return ",".join(value) if isinstance(value, list) else value
    if fmt == "queryparam":
        raise ValueError("queryparam only belongs in links")
    raise ValueError(f"format {fmt} is not emulated")


def template_replace(raw: str, variables: dict[str, Var], builtins: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in builtins:
            return builtins[name]
        var = variables.get(name)
        if var is None:
            return match.group(0)
        return _format(var.resolved(), fmt)

    return _VARIABLE.sub(sub, raw)


# -- 2. backend macros -------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeContext:
    start: dt.datetime
    end: dt.datetime
    interval: dt.timedelta


def _unix(t: dt.datetime) -> int:
    return int(t.timestamp())


def _interval_s(ctx: TimeContext) -> int:
    return int(max(ctx.interval.total_seconds(), 1))


_MACROS: dict[str, Callable[[TimeContext, list[str]], str]] = {
    "timeFilter": lambda c, a: (
        f"{a[0]} >= toDateTime({_unix(c.start)}) AND {a[0]} <= toDateTime({_unix(c.end)})"
    ),
    "fromTime": lambda c, a: f"toDateTime({_unix(c.start)})",
    "toTime": lambda c, a: f"toDateTime({_unix(c.end)})",
    "timeFrom": lambda c, a: f"{a[0]} >= toDateTime({_unix(c.start)})",
    "timeTo": lambda c, a: f"{a[0]} <= toDateTime({_unix(c.end)})",
    "interval_s": lambda c, a: str(_interval_s(c)),
    "timeInterval": lambda c, a: f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {_interval_s(c)} second)",
}
_ARG_COUNT = {"timeFilter": 1, "timeFrom": 1, "timeTo": 1, "timeInterval": 1}


def _scan_quoted(s: str, pos: int) -> int:
    quote = s[pos]
    i = pos + 1
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            i += 2
        elif s[i] == quote:
            if i + 1 < len(s) and s[i + 1] == quote:
                i += 2
                continue
            return i + 1
        else:
            i += 1
    return len(s)


def _strip_comments(s: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(s):
        if s[i] in "'\"`":
            end = _scan_quoted(s, i)
            out.append(s[i:end])
            i = end
        elif s.startswith("--", i):
            while i < len(s) and s[i] != "\n":
                i += 1
        elif s.startswith("/*", i):
            end = s.find("*/", i + 2)
            i = len(s) if end == -1 else end + 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _split_args(raw: str) -> list[str]:
    args, depth, start, i = [], 0, 0, 0
    while i < len(raw):
        c = raw[i]
        if c in "'\"`":
            i = _scan_quoted(raw, i)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            args.append(raw[start:i].strip())
            start = i + 1
        i += 1
    args.append(raw[start:].strip())
    return [a for a in args if a] if len(args) == 1 else args


def interpolate_macros(sql: str, ctx: TimeContext) -> str:
    sql = _strip_comments(sql)
    out: list[str] = []
    i = 0
    while i < len(sql):
        c = sql[i]
        if c in "'\"`":
            end = _scan_quoted(sql, i)
            out.append(sql[i:end])
            i = end
            continue
        match = re.compile(r"\$__(\w+)").match(sql, i)
        if match is None or match.group(1) not in _MACROS:
            out.append(c)
            i += 1
            continue
        name = match.group(1)
        end = match.end()
        args: list[str] = []
        if end < len(sql) and sql[end] == "(":
            depth, j = 0, end
            while j < len(sql):
                if sql[j] in "'\"`":
                    j = _scan_quoted(sql, j)
                    continue
                if sql[j] == "(":
                    depth += 1
                elif sql[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            args = [interpolate_macros(a, ctx) for a in _split_args(sql[end + 1 : j])]
            end = j + 1
        want = _ARG_COUNT.get(name)
        if want is not None and len(args) != want:
            raise ValueError(f"$__{name} expected {want} argument(s), received {len(args)}")
        out.append(_MACROS[name](ctx, args))
        i = end
    return "".join(out)


def expand(raw: str, variables: dict[str, Var], ctx: TimeContext) -> str:
    """rawSql as the ClickHouse server receives it from Grafana."""
    builtins = {
        "__from": str(int(ctx.start.timestamp() * 1000)),
        "__to": str(int(ctx.end.timestamp() * 1000)),
        "__interval_ms": str(int(ctx.interval.total_seconds() * 1000)),
    }
    sql = apply_conditional_all(raw, variables)
    sql = template_replace(sql, variables, builtins)
    return interpolate_macros(sql, ctx)
