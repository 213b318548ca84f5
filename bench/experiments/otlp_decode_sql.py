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
_ANY = f"Tuple(value {_KINDS}, string_value String, bool_value UInt8, int_value Int64)"
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
_SIMPLE = r"'^[\x20-\x26\x28-\x5b\x5d-\x7e]*$'"
_VERB = r"'^[a-z][a-z_]{0,63}$'"
_RISKY_KINDS_ARRAY = "['double_value', 'array_value', 'kvlist_value', 'bytes_value']"


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


def _raw_text(v: str) -> str:
    """validate._text(any_value(v)) before the length cut, for the value kinds the engine
    handles (string, int, bool, unset)."""
    return (
        f"multiIf({v}.value = 'string_value', replaceAll({v}.string_value, '\\0', '\\xEF\\xBF\\xBD'),"
        f" {v}.value = 'int_value', toString({v}.int_value),"
        f" {v}.value = 'bool_value', if({v}.bool_value != 0, 'true', 'false'), '')"
    )


def _repr(expr: str) -> str:
    return f"concat('''', {expr}, '''')"


_MAPPED = "[" + ", ".join(_q(k) for k in sorted(V.MAPPED)) + "]"
#: mapped attribute → its column name in the record layer
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


def _last(key: str) -> str:
    """The value of the last attribute named ``key`` (Python's dict keeps the last one);
    an all-default tuple (kind '') when absent."""
    pos = f"indexOf(reverse(keys), {_q(key)})"
    return f"if({pos} = 0, CAST(tuple(0, '', 0, 0), {_q(_ANY)}), vals[length(keys) - {pos} + 1])"


def _utf8_ok(kvs: str) -> str:
    # An ASCII separator cannot turn invalid UTF-8 fragments into valid text: one check per list.
    return (
        f"isValidUTF8(arrayStringConcat({kvs}.key, '\\n'))"
        f" AND isValidUTF8(arrayStringConcat({kvs}.value.string_value, '\\n'))"
    )


def _kinds_ok(kvs: str) -> str:
    return f"NOT hasAny(CAST({kvs}.value.value, 'Array(String)'), {_RISKY_KINDS_ARRAY})"


def _resource_ok() -> str:
    scope = (
        f"arrayAll(sl -> isValidUTF8(sl.scope.name) AND isValidUTF8(sl.scope.version)"
        f" AND isValidUTF8(sl.schema_url) AND {_utf8_ok('sl.scope.attributes')}"
        f" AND {_kinds_ok('sl.scope.attributes')}, rl.scope_logs)"
    )
    return (
        f"arrayAll(rl -> isValidUTF8(rl.schema_url) AND {_utf8_ok('rl.resource.attributes')}"
        f" AND {_kinds_ok('rl.resource.attributes')} AND {scope}, resource_logs)"
    )


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

    Built in layers (source → records → lookups → texts → columns and verdict): each layer's
    results are columns of the next, so the analyzer sees small expressions, not inlined ones.
    """
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
    en_pos = f"indexOf(keys, {_q(A.EVENT_NAME_ATTR)})"
    records = f"""
SELECT _req, toUInt32(i - 1) AS _idx, f.1 AS service, f.2 AS r, r.attributes AS attrs,
    attrs.key AS keys, attrs.value AS vals, request_ok,
    if(r.event_name != '', r.event_name, if({en_pos} = 0, '', vals[{en_pos}].string_value)) AS name,
    startsWith(name, {_q(A.EVENT_NAME_PREFIX)}) AND length(name) > {len(A.EVENT_NAME_PREFIX)} AS audit
FROM ({source})
ARRAY JOIN flat AS f, arrayEnumerate(flat) AS i"""
    lookups = ",\n    ".join(f"{_last(key)} AS {column}" for key, column in _LOOKUPS.items())
    record_ok = (
        f"request_ok AND {_kinds_ok('attrs')} AND {_utf8_ok('attrs')} AND isValidUTF8(r.event_name)"
        " AND isValidUTF8(r.severity_text) AND isValidUTF8(r.body.string_value)"
    )
    looked = f"""
SELECT *, {lookups},
    arrayFilter(kv -> NOT has({_MAPPED}, kv.key), attrs) AS extras,
    {record_ok} AS record_ok,
    if(r.time_unix_nano != 0, r.time_unix_nano, r.observed_time_unix_nano) AS nanos
FROM ({records})"""
    uuid_hex = (
        "replaceAll(trim(BOTH '{}' FROM replaceAll(replaceAll(v_eid.string_value, 'urn:', ''),"
        " 'uuid:', '')), '-', '')"
    )
    raw = {
        "tenant": "v_tenant",
        "user": "v_user",
        "alias": "v_alias",
        "action": "v_action",
        "outcome": "v_outcome",
        "actor": "v_actor",
        "rtype": "v_rtype",
        "rid": "v_rid",
        "ip": "v_ip",
        "ua": "v_ua",
        "session": "v_session",
        "method": "v_method",
        "route": "v_route",
    }
    raw_columns = ",\n    ".join(f"{_raw_text(col)} AS t_{name}" for name, col in raw.items())
    raws = f"""
SELECT *, {raw_columns},
    replaceAll(name, '\\0', '\\xEF\\xBF\\xBD') AS t_name,
    if(r.body.value = 'string_value', replaceAll(r.body.string_value, '\\0', '\\xEF\\xBF\\xBD'), '') AS t_body,
    arrayMap(v -> {_raw_text("v")}, extras.value) AS t_extras
FROM ({looked})"""
    texts = f"""
SELECT *,
    (v_eid.value = '') OR (v_eid.value = 'string_value' AND v_eid.string_value = '')
        OR (v_eid.value = 'int_value' AND v_eid.int_value = 0)
        OR (v_eid.value = 'bool_value' AND v_eid.bool_value = 0) AS eid_missing,
    {uuid_hex} AS eid_hex,
    substringUTF8(v_eid.string_value, 1, 64) AS eid_shown,
    {_cut("t_tenant", 256)} AS claimed,
    has(keys, {_q(A.USER_ID)}) AS has_user,
    has(keys, {_q(A.USER_ID_ALIAS)}) AS has_alias,
    if(has_user, {_cut("t_user", 1024)}, {_cut("t_alias", 1024)}) AS user_text,
    {_cut("t_action", 64)} AS action_text,
    if(t_outcome = '', {_q(A.DEFAULT_OUTCOME)}, {_cut("t_outcome", 64)}) AS outcome_text,
    if(t_actor = '', {_q(A.DEFAULT_ACTOR_TYPE)}, {_cut("t_actor", 64)}) AS actor_text,
    {_cut("t_rtype", 256)} AS rtype_text,
    v_changes.string_value AS ch_s,
    {_cut("t_method", 16)} AS method_raw,
    multiIf(v_status.value = 'int_value', v_status.int_value,
        v_status.value = 'bool_value', toInt64(v_status.bool_value),
        v_status.value = 'string_value', toInt64OrZero(v_status.string_value), 0) AS status_num
FROM ({raws})"""
    token_mode = token_tenant is not None
    if token_mode:
        mismatch = _q(f"{A.TENANT_ID} does not match the tenant of the ingest token")
        tenant_check = f"claimed != '' AND claimed != {{token_tenant:String}}, {mismatch},"
        tenant = "{token_tenant:String}"
    else:
        missing = _q(f"{A.TENANT_ID} is missing (required when ingest is not token-authenticated)")
        tenant_check = f"claimed = '', {missing},"
        tenant = "claimed"
    outcomes = "(" + ", ".join(_q(o) for o in A.OUTCOMES) + ")"
    verb_msg = _q(" must be lowercase letters and '_'")
    unsure = f"""
        NOT record_ok
        OR length(extras) > {V.MAX_ATTRIBUTES}
        OR length(arrayDistinct(extras.key)) != length(extras)
        OR arrayExists(k -> lengthUTF8(k) > 256 OR position(k, '\\0') > 0, extras.key)
        OR (NOT eid_missing AND v_eid.value != 'string_value')
        OR (NOT eid_missing AND lengthUTF8(eid_hex) = 32 AND NOT match(eid_hex, '^[0-9a-fA-F]{{32}}$'))
        OR (NOT eid_missing AND lengthUTF8(eid_hex) != 32 AND NOT match(eid_shown, {_SIMPLE}))
        OR (action_text != '' AND NOT match(action_text, {_VERB}) AND NOT match(action_text, {_SIMPLE}))
        OR (outcome_text NOT IN {outcomes} AND NOT match(outcome_text, {_SIMPLE}))
        OR (NOT match(actor_text, {_VERB}) AND NOT match(actor_text, {_SIMPLE}))
        OR (v_changes.value = 'string_value' AND ch_s != '' AND (NOT isValidJSON(ch_s)
            OR countSubstrings(ch_s, '{{') + countSubstrings(ch_s, '[') > 64))
        OR match(method_raw, '[^\\x00-\\x7f]')
        OR (v_status.value = 'string_value' AND NOT match(v_status.string_value, '^[0-9]{{0,18}}$'))"""
    not_object = _q(f"{A.CHANGES} must be a JSON object of {{field: {{old, new}}}}")
    reason = f"""multiIf(
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
        v_changes.value IN ('int_value', 'bool_value')
            OR (v_changes.value = 'string_value' AND ch_s != '' AND JSONType(ch_s) != 'Object'), {not_object},
        v_changes.value = 'string_value' AND lengthUTF8(ch_s) > {V.MAX_CHANGES_CHARS},
            {_q(f"{A.CHANGES} is larger than {V.MAX_CHANGES_CHARS} characters")},
        nanos = 0, {_q("time_unix_nano is 0 (the event time is required)")},
        nanos > {V._MAX_TIME_NS}, {_q("time_unix_nano is after 2299-12-31, outside the storable range")},
        '')"""
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
    if(v_changes.value = 'string_value', ch_s, '') AS changes,
    {_cut("t_ip", 64)} AS ip_address,
    {_cut("t_ua", 1024)} AS user_agent,
    fromUnixTimestamp64Micro(toInt64(intDiv(least(nanos, {V._MAX_TIME_NS}), 1000)), 'UTC') AS created_at,
    fromUnixTimestamp64Micro({{received_at:Int64}}, 'UTC') AS received_at,
    substringUTF8(service, 1, 256) AS service_name,
    if(length(r.trace_id) = 16, lower(hex(r.trace_id)), '') AS trace_id,
    if(length(r.span_id) = 8, lower(hex(r.span_id)), '') AS span_id,
    {_cut("t_session", 256)} AS session_id,
    upper(method_raw) AS http_method,
    {_cut("t_route", 1024)} AS http_route,
    toUInt16(if(status_num BETWEEN 0 AND 65535, status_num, 0)) AS http_status,
    {_cut("t_body", _MAX)} AS reason,
    mapFromArrays(extras.key, arrayMap(x -> {_cut("x", _MAX)}, t_extras)) AS attributes,
    toDate32(created_at) + if(has({{retain_keys:Array(String)}}, tenant_id),
        {{retain_values:Array(UInt32)}}[indexOf({{retain_keys:Array(String)}}, tenant_id)],
        {{retain_default:UInt32}}) AS retain_until,
    retain_until AS hot_until,
    _req,
    _idx,
    toUInt8(audit) AS _audit,
    {reason} AS _reason
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
