"""EXPERIMENT (not wired into the receiver; see docs/BENCHMARKS.md, "Ingest: the engine decoder").

The engine-side OTLP decoder's SQL: raw ``ExportLogsServiceRequest`` bytes (a file the engine
reads with its ``ProtobufSingle`` input format and ``otlp_logs.proto``) → one row per log record,
flattened, filtered and validated with the rules and reason texts of
``receiver/pipeline/validate.py``, with the columns of ``receiver.model.ARROW_SCHEMA`` plus
``_idx`` (the record's index in the request), ``_audit`` (1: an audit event) and ``_reason``
(``''`` accepted, a rejection reason, or :data:`FALLBACK`). ``id`` means something only where
``_reason`` is ``''`` (making it depend on ``_reason`` made the analyzer build that rule chain
twice: ~80 ms a statement).

:data:`FALLBACK` marks what this SQL does not reproduce exactly (double, bytes, array or kvlist
values, Python ``repr`` of unusual text, UUID spellings beyond the plain ones, keys past the
limits, invalid UTF-8, JSON the engine cannot vouch for, …): the caller then runs the Python
pipeline on the whole request, so the outcome is always the Python one. Everything here is
built from constants; the request's values arrive as bound parameters or as the file's bytes.
"""

from __future__ import annotations

from pathlib import Path

from otel_audit import attributes as A
from receiver.pipeline import validate as V
from receiver.store.sql import Statement

PROTO_FILE = "otlp_logs.proto"
PROTO_MESSAGE = "ExportLogsServiceRequest"
#: ``_reason`` of a record the engine hands back to the Python pipeline
FALLBACK = "\x01"


def proto_text() -> str:
    return (Path(__file__).parent / PROTO_FILE).read_text(encoding="utf-8")


def install_proto(directory: Path) -> Path:
    """Write the schema file where the engine reads format schemas; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / PROTO_FILE
    text = proto_text()
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


_KINDS = (
    "Enum8('' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4,"
    " 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7)"
)
# every oneof member needs a column: the engine sets the case only for members it reads (without
# double_value … bytes_value, a double attribute read as unset and was stored as "")
_ANY = (
    f"Tuple(value {_KINDS}, string_value String, bool_value UInt8, int_value Int64, double_value Float64,"
    " array_value String, kvlist_value String, bytes_value String)"
)
_KV = f"Array(Tuple(key String, value {_ANY}))"
_RECORD = (
    f"Tuple(time_unix_nano UInt64, severity_text String, body {_ANY}, attributes {_KV},"
    " trace_id String, span_id String, observed_time_unix_nano UInt64, event_name String)"
)
_SCOPE_LOGS = (
    f"Tuple(scope Tuple(name String, version String, attributes {_KV}),"
    f" log_records Array({_RECORD}), schema_url String)"
)
STRUCTURE = (
    f"resource_logs Array(Tuple(resource Tuple(attributes {_KV}),"
    f" scope_logs Array({_SCOPE_LOGS}), schema_url String))"
)

_TRUNC = V._TRUNCATED
_MAX = V.MAX_VALUE_CHARS
#: printable ASCII but ' and \ : Python's repr() of such text is the text in single quotes
# (escaped twice: the SQL literal turns \\x5b into \x5b for the regex, not into a bare "[")
_SIMPLE = r"'^[\\x20-\\x26\\x28-\\x5b\\x5d-\\x7e]*$'"
_VERB = r"'^[a-z][a-z_]{0,63}$'"


#: measured to cut the statement's analysis (bench/experiments/engine_decode.py): the AND-chain
#: rewrite (optimize_and_compare_chain) alone took ~100 ms on the rule chains below, and the plan
#: optimizations only help filters and joins, which this statement has none of
SETTINGS = "optimize_and_compare_chain = 0, query_plan_enable_optimizations = 0"


def _q(text: str) -> str:
    """A constant as a SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _cut(expr: str, limit: int) -> str:
    return (
        f"if(lengthUTF8({expr}) > {limit}, concat(substringUTF8({expr}, 1, {limit}), {_q(_TRUNC)}), {expr})"
    )


def _string_text(expr: str, limit: int) -> str:
    """validate._text of a str: NUL → U+FFFD, then cut to ``limit`` characters."""
    return _cut(f"replaceAll({expr}, '\\0', '\\xEF\\xBF\\xBD')", limit)


# AnyValue's oneof case as Int8 (the engine reads it as the Enum8 above)
_K_STRING, _K_BOOL, _K_INT = 1, 2, 3
_RISKY_KINDS = "[4, 5, 6, 7]"  # double, array, kvlist, bytes


def _raw_text(kind: str, s: str, i: str, b: str) -> str:
    """validate._text(any_value(v)) before the length cut, for the value kinds the engine
    handles (string, int, bool, unset)."""
    return (
        f"multiIf({kind} = {_K_STRING}, replaceAll({s}, '\\0', '\\xEF\\xBF\\xBD'),"
        f" {kind} = {_K_INT}, toString({i}), {kind} = {_K_BOOL}, if({b} != 0, 'true', 'false'), '')"
    )


def _repr(expr: str) -> str:
    return f"concat('''', {expr}, '''')"


_MAPPED = "[" + ", ".join(_q(k) for k in sorted(V.MAPPED)) + "]"
#: mapped attribute → its columns' prefix (``<prefix>_k`` kind, ``_s``, ``_i``, ``_b``)
_LOOKUPS = {
    A.EVENT_ID: "v_eid",
    A.TENANT_ID: "v_tenant",
    A.USER_ID: "v_user",
    A.USER_ID_ALIAS: "v_alias",
    A.ACTION: "v_action",
    A.OUTCOME: "v_outcome",
    A.ACTOR_TYPE: "v_actor",
    A.RESOURCE_TYPE: "v_rtype",
    A.RESOURCE_ID: "v_rid",
    A.CHANGES: "v_changes",
    A.CLIENT_ADDRESS: "v_ip",
    A.USER_AGENT: "v_ua",
    A.SESSION_ID: "v_session",
    A.HTTP_METHOD: "v_method",
    A.HTTP_ROUTE: "v_route",
    A.HTTP_STATUS: "v_status",
}


def _utf8_ok(keys: str, strings: str) -> str:
    # An ASCII separator cannot turn invalid UTF-8 fragments into valid text: one check per list.
    return (
        f"isValidUTF8(arrayStringConcat({keys}, '\\n')) AND isValidUTF8(arrayStringConcat({strings}, '\\n'))"
    )


def _kinds_ok(kinds: str) -> str:
    return f"NOT hasAny(CAST({kinds}, 'Array(Int8)'), {_RISKY_KINDS})"


def _kv_ok(kvs: str) -> str:
    return f"{_utf8_ok(kvs + '.key', kvs + '.value.string_value')} AND {_kinds_ok(kvs + '.value.value')}"


def _resource_ok() -> str:
    scope = (
        f"arrayAll(sl -> isValidUTF8(sl.scope.name) AND isValidUTF8(sl.scope.version)"
        f" AND isValidUTF8(sl.schema_url) AND {_kv_ok('sl.scope.attributes')}, rl.scope_logs)"
    )
    return (
        f"arrayAll(rl -> isValidUTF8(rl.schema_url) AND {_kv_ok('rl.resource.attributes')}"
        f" AND {scope}, resource_logs)"
    )


def _select(carry: list[str], new: list[str], source: str) -> str:
    """One layer: the columns later layers still need, by name (no ``SELECT *``), plus new ones."""
    return f"SELECT {', '.join(carry + new)}\nFROM ({source})"


def _record_layers(input_format: str) -> str:
    """source → records → positions → values: one row per record, mapped attributes looked up."""
    svc_pos = f"indexOf(rl.resource.attributes.key, {_q(A.SERVICE_NAME)})"
    service = f"if({svc_pos} = 0, '', rl.resource.attributes.value[{svc_pos}].string_value)"
    flat = (
        "arrayFlatten(arrayMap(rl -> arrayFlatten(arrayMap(sl -> arrayMap(r -> tuple("
        f"{service}, r), sl.log_records), rl.scope_logs)), resource_logs))"
    )
    source = (
        f"SELECT rowNumberInAllBlocks() AS _req, {flat} AS flat, {_resource_ok()} AS request_ok"
        f" FROM file({{path:String}}, {_q(input_format)}, {_q(STRUCTURE)})"
    )
    fields = {
        "tn": "time_unix_nano",
        "otn": "observed_time_unix_nano",
        "ename": "event_name",
        "sev": "severity_text",
        "trace": "trace_id",
        "span": "span_id",
    }
    picked = ", ".join(f"tupleElement(f.2, '{field}') AS {name}" for name, field in fields.items())
    records = f"""
SELECT _req, toUInt32(i - 1) AS _idx, f.1 AS service, request_ok, {picked},
    CAST(f.2.body.value, 'Int8') AS body_k, f.2.body.string_value AS body_s,
    f.2.attributes.key AS keys, CAST(f.2.attributes.value.value, 'Array(Int8)') AS kinds,
    f.2.attributes.value.string_value AS svals, f.2.attributes.value.int_value AS ivals,
    f.2.attributes.value.bool_value AS bvals
FROM ({source})
ARRAY JOIN flat AS f, arrayEnumerate(flat) AS i"""
    base = ["_req", "_idx", "service", "tn", "otn", "trace", "span", "body_k", "body_s"]
    # the last attribute of a name wins (Python's dict); an absent one points past the end,
    # where every array reads as its type's default (kind 0)
    positions = [
        f"length(keys) + 1 - indexOf(reverse(keys), {_q(key)}) AS {col}_p" for key, col in _LOOKUPS.items()
    ]
    en_pos = f"indexOf(keys, {_q(A.EVENT_NAME_ATTR)})"
    pos_layer = _select(
        [*base, "keys", "kinds", "svals", "ivals", "bvals"],
        [
            *positions,
            f"if(ename != '', ename, if({en_pos} = 0, '', svals[{en_pos}])) AS name",
            f"request_ok AND {_kinds_ok('kinds')} AND {_utf8_ok('keys', 'svals')} AND isValidUTF8(ename)"
            " AND isValidUTF8(sev) AND isValidUTF8(body_s) AS record_ok",
            f"arrayMap(k -> NOT has({_MAPPED}, k), keys) AS extra_mask",
        ],
        records,
    )
    values = []
    for col in _LOOKUPS.values():
        values += [f"{arr}[{col}_p] AS {col}_{arr[0]}" for arr in ("kinds", "svals", "ivals", "bvals")]
    all_texts = f"arrayMap((k, s, i, b) -> {_raw_text('k', 's', 'i', 'b')}, kinds, svals, ivals, bvals)"
    return _select(
        [*base, "keys", "name", "record_ok"],
        [
            *values,
            "arrayFilter((k, m) -> m, keys, extra_mask) AS extras_key",
            f"arrayFilter((t, m) -> m, {all_texts}, extra_mask) AS t_extras",
            "if(tn != 0, tn, otn) AS nanos",
            f"startsWith(name, {_q(A.EVENT_NAME_PREFIX)}) AND length(name) > {len(A.EVENT_NAME_PREFIX)} AS audit",
        ],
        pos_layer,
    )


_RAW = (
    "tenant",
    "user",
    "alias",
    "action",
    "outcome",
    "actor",
    "rtype",
    "rid",
    "ip",
    "ua",
    "session",
    "method",
    "route",
)
_KEEP = ["_req", "_idx", "service", "trace", "span", "record_ok", "nanos", "audit", "extras_key", "t_extras"]


def _text_layers(values: str) -> str:
    """values → raw texts → cut texts and the fields the rules read."""
    raws = _select(
        [
            *_KEEP,
            "keys",
            *(f"v_eid_{x}" for x in "ksib"),
            "v_changes_k",
            "v_changes_s",
            *(f"v_status_{x}" for x in "ksib"),
        ],
        [
            *(_raw_text(f"v_{n}_k", f"v_{n}_s", f"v_{n}_i", f"v_{n}_b") + f" AS t_{n}" for n in _RAW),
            "replaceAll(name, '\\0', '\\xEF\\xBF\\xBD') AS t_name",
            f"if(body_k = {_K_STRING}, replaceAll(body_s, '\\0', '\\xEF\\xBF\\xBD'), '') AS t_body",
        ],
        values,
    )
    uuid_hex = (
        "replaceAll(trim(BOTH '{}' FROM replaceAll(replaceAll(v_eid_s, 'urn:', ''), 'uuid:', '')), '-', '')"
    )
    return _select(
        [
            *_KEEP,
            "v_eid_k",
            "v_changes_k",
            "v_status_k",
            "v_status_s",
            *(f"t_{n}" for n in ("rid", "name", "ip", "ua", "session", "route", "body")),
        ],
        [
            f"(v_eid_k = 0) OR (v_eid_k = {_K_STRING} AND v_eid_s = '')"
            f" OR (v_eid_k = {_K_INT} AND v_eid_i = 0) OR (v_eid_k = {_K_BOOL} AND v_eid_b = 0) AS eid_missing",
            f"{uuid_hex} AS eid_hex",
            "substringUTF8(v_eid_s, 1, 64) AS eid_shown",
            f"{_cut('t_tenant', 256)} AS claimed",
            f"has(keys, {_q(A.USER_ID)}) AS has_user",
            f"has(keys, {_q(A.USER_ID_ALIAS)}) AS has_alias",
            f"if(has_user, {_cut('t_user', 1024)}, {_cut('t_alias', 1024)}) AS user_text",
            f"{_cut('t_action', 64)} AS action_text",
            f"if(t_outcome = '', {_q(A.DEFAULT_OUTCOME)}, {_cut('t_outcome', 64)}) AS outcome_text",
            f"if(t_actor = '', {_q(A.DEFAULT_ACTOR_TYPE)}, {_cut('t_actor', 64)}) AS actor_text",
            f"{_cut('t_rtype', 256)} AS rtype_text",
            "v_changes_s AS ch_s",
            f"{_cut('t_method', 16)} AS method_raw",
            f"multiIf(v_status_k = {_K_INT}, v_status_i, v_status_k = {_K_BOOL}, toInt64(v_status_b),"
            f" v_status_k = {_K_STRING}, toInt64OrZero(v_status_s), 0) AS status_num",
        ],
        raws,
    )


def _reason(tenant_check: str) -> str:
    """validate.py's rules in its order: '' accepted, a reason, or FALLBACK."""
    outcomes = "(" + ", ".join(_q(o) for o in A.OUTCOMES) + ")"
    verb_msg = _q(" must be lowercase letters and '_'")
    unsure = f"""
        NOT record_ok
        OR length(extras_key) > {V.MAX_ATTRIBUTES}
        OR length(arrayDistinct(extras_key)) != length(extras_key)
        OR arrayExists(k -> lengthUTF8(k) > 256 OR position(k, '\\0') > 0, extras_key)
        OR (NOT eid_missing AND v_eid_k != {_K_STRING})
        OR (NOT eid_missing AND lengthUTF8(eid_hex) = 32 AND NOT match(eid_hex, '^[0-9a-fA-F]{{32}}$'))
        OR (NOT eid_missing AND lengthUTF8(eid_hex) != 32 AND NOT match(eid_shown, {_SIMPLE}))
        OR (action_text != '' AND NOT match(action_text, {_VERB}) AND NOT match(action_text, {_SIMPLE}))
        OR (outcome_text NOT IN {outcomes} AND NOT match(outcome_text, {_SIMPLE}))
        OR (NOT match(actor_text, {_VERB}) AND NOT match(actor_text, {_SIMPLE}))
        OR (v_changes_k = {_K_STRING} AND ch_s != '' AND (NOT isValidJSON(ch_s)
            OR countSubstrings(ch_s, '{{') + countSubstrings(ch_s, '[') > 64))
        OR match(method_raw, '[^\\x00-\\x7f]')
        OR (v_status_k = {_K_STRING} AND NOT match(v_status_s, '^[0-9]{{0,18}}$'))"""
    not_object = _q(f"{A.CHANGES} must be a JSON object of {{field: {{old, new}}}}")
    return f"""multiIf(
        NOT audit, '',
        {unsure}, {_q(FALLBACK)},
        eid_missing, {_q(f"{A.EVENT_ID} is missing")},
        lengthUTF8(eid_hex) != 32, concat({_q(A.EVENT_ID + " ")}, {_repr("eid_shown")}, ' is not a UUID'),
        {tenant_check}
        NOT has_user AND NOT has_alias, {_q(f'{A.USER_ID} is missing (send "" for an anonymous actor)')},
        action_text = '', {_q(f"{A.ACTION} is missing")},
        NOT match(action_text, {_VERB}), concat({_q(A.ACTION + " ")}, {_repr("action_text")}, {verb_msg}),
        outcome_text NOT IN {outcomes},
            concat({_q(A.OUTCOME + " ")}, {_repr("outcome_text")}, {_q(" must be one of " + ", ".join(A.OUTCOMES))}),
        NOT match(actor_text, {_VERB}), concat({_q(A.ACTOR_TYPE + " ")}, {_repr("actor_text")}, {verb_msg}),
        rtype_text = '', {_q(f"{A.RESOURCE_TYPE} is missing")},
        v_changes_k IN ({_K_INT}, {_K_BOOL})
            OR (v_changes_k = {_K_STRING} AND ch_s != '' AND JSONType(ch_s) != 'Object'), {not_object},
        v_changes_k = {_K_STRING} AND lengthUTF8(ch_s) > {V.MAX_CHANGES_CHARS},
            {_q(f"{A.CHANGES} is larger than {V.MAX_CHANGES_CHARS} characters")},
        nanos = 0, {_q("time_unix_nano is 0 (the event time is required)")},
        nanos > {V._MAX_TIME_NS}, {_q("time_unix_nano is after 2299-12-31, outside the storable range")},
        '')"""


def decode_statement(
    path: str,
    *,
    token_tenant: str | None,
    received_at_us: int,
    retain_default: int,
    retain_tenants: dict[str, int],
    input_format: str = "ProtobufSingle",
) -> Statement:
    """The decode query over the request bytes stored at ``path`` (a file the caller wrote).

    Built in layers (source → records → positions → values → texts → columns and verdict): each
    layer's results are columns of the next, so the analyzer sees small expressions, not inlined
    ones, and each layer passes on only the columns later layers read.
    """
    texts = _text_layers(_record_layers(input_format))
    token_mode = token_tenant is not None
    if token_mode:
        mismatch = _q(f"{A.TENANT_ID} does not match the tenant of the ingest token")
        tenant_check = f"claimed != '' AND claimed != {{token_tenant:String}}, {mismatch},"
        tenant = "{token_tenant:String}"
    else:
        missing = _q(f"{A.TENANT_ID} is missing (required when ingest is not token-authenticated)")
        tenant_check = f"claimed = '', {missing},"
        tenant = "claimed"
    sql = f"""
SELECT
    lower(concat(substring(eid_hex, 1, 8), '-', substring(eid_hex, 9, 4), '-',
        substring(eid_hex, 13, 4), '-', substring(eid_hex, 17, 4), '-', substring(eid_hex, 21, 12))) AS id,
    {tenant} AS tenant_id,
    user_text AS user_id,
    actor_text AS actor_type,
    action_text AS action,
    outcome_text AS outcome,
    rtype_text AS resource_type,
    {_cut("t_rid", 1024)} AS resource_id,
    {_cut("t_name", 256)} AS event_name,
    if(v_changes_k = {_K_STRING}, ch_s, '') AS changes,
    {_cut("t_ip", 64)} AS ip_address,
    {_cut("t_ua", 1024)} AS user_agent,
    fromUnixTimestamp64Micro(toInt64(intDiv(least(nanos, {V._MAX_TIME_NS}), 1000)), 'UTC') AS created_at,
    fromUnixTimestamp64Micro({{received_at:Int64}}, 'UTC') AS received_at,
    substringUTF8(service, 1, 256) AS service_name,
    if(length(trace) = 16, lower(hex(trace)), '') AS trace_id,
    if(length(span) = 8, lower(hex(span)), '') AS span_id,
    {_cut("t_session", 256)} AS session_id,
    upper(method_raw) AS http_method,
    {_cut("t_route", 1024)} AS http_route,
    toUInt16(if(status_num BETWEEN 0 AND 65535, status_num, 0)) AS http_status,
    {_cut("t_body", _MAX)} AS reason,
    mapFromArrays(extras_key, arrayMap(x -> {_cut("x", _MAX)}, t_extras)) AS attributes,
    toDate32(created_at) + if(has({{retain_keys:Array(String)}}, tenant_id),
        {{retain_values:Array(UInt32)}}[indexOf({{retain_keys:Array(String)}}, tenant_id)],
        {{retain_default:UInt32}}) AS retain_until,
    retain_until AS hot_until,
    _req,
    _idx,
    toUInt8(audit) AS _audit,
    {_reason(tenant_check)} AS _reason
FROM ({texts})
ORDER BY _req, _idx
SETTINGS {SETTINGS}
"""
    params: dict[str, object] = {
        "path": path,
        "received_at": received_at_us,
        "retain_keys": list(retain_tenants),
        "retain_values": list(retain_tenants.values()),
        "retain_default": retain_default,
    }
    if token_mode:
        params["token_tenant"] = token_tenant
    return Statement(sql, params)
