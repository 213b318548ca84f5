"""Many OTLP requests at once: native decode into Arrow (``ptars``), then the common case
validated column-wise with pyarrow.compute.

A request goes the fast way only when every audit record in it satisfies the invariants under
which :func:`receiver.pipeline.validate.to_row` takes each value as it is (plain strings within
their limits, a canonical UUID, known or plain verbs, a storable time inside the tenant's
window, no NUL or bidi control, no duplicate key, no schema for its event name, ...). Any other
request — one record it cannot decide is enough — is marked for the reference pipeline
(:func:`receiver.pipeline.run`), so rejections, their messages and every edge case come from one
place. tests/receiver/test_batching_equivalence.py checks the two give the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ptars import HandlerPool

from otel_audit import attributes as A
from receiver.batching.decode_schema import export_logs_request
from receiver.batching.kernels import (
    as_numpy,
    changes_column,
    hex_ids,
    is_verb,
    may_be_unsafe,
    other_kind,
    policies,
)
from receiver.model import ARROW_SCHEMA
from receiver.pipeline.enrich import SERVICE_NAME_CHARS, RetainDays
from receiver.pipeline.flags import BIDI_CONTROLS
from receiver.pipeline.schemas import SchemaStage
from receiver.pipeline.validate import _MAX_TIME_NS, MAPPED, MAX_ATTRIBUTES, MAX_VALUE_CHARS
from receiver.pipeline.window import EXPIRY_MARGIN, MAX_FUTURE_SKEW

_REQUEST = export_logs_request()
_HANDLER = HandlerPool([_REQUEST.file]).get_for_message(_REQUEST)
_US_PER_DAY = 86_400_000_000
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_OUTCOMES = pa.array(list(A.OUTCOMES))
#: mapped attribute → its longest value taken as it is (None: no limit short of the fast path's)
_LIMITS = {
    A.TENANT_ID: 256,
    A.RESOURCE_TYPE: 256,
    A.SESSION_ID: 256,
    A.USER_ID: 1024,
    A.USER_ID_ALIAS: 1024,
    A.RESOURCE_ID: 1024,
    A.USER_AGENT: 1024,
    A.HTTP_ROUTE: 1024,
    A.CLIENT_ADDRESS: 64,
    A.HTTP_METHOD: 16,
    A.ACTION: 64,
    A.OUTCOME: 64,
    A.ACTOR_TYPE: 64,
    A.EVENT_ID: 36,
    A.CHANGES: None,
}


@dataclass
class Decoded:
    """One batch's outcome: the fast requests' rows, and per request what the pipeline reports."""

    #: rows of every fast request, in request order (ARROW_SCHEMA)
    table: pa.Table
    #: per request: True when it must take the reference pipeline
    fallback: list[bool]
    #: per request: records in it / non-audit records dropped / rows in ``table``
    received: list[int]
    dropped: list[int]
    accepted: list[int]


def decode_batch(bodies: Sequence[bytes]) -> pa.RecordBatch | None:
    """The requests as one nested Arrow batch (a row each), or None when one does not decode."""
    try:
        return _HANDLER.list_to_record_batch(list(bodies))
    except ValueError:
        return None


def run_batch(
    bodies: Sequence[bytes],
    batch: pa.RecordBatch,
    tenants: Sequence[str | None],
    received_at_us: int,
    retain_days: RetainDays,
    hot_days: RetainDays | None,
    schemas: SchemaStage | None,
) -> Decoded:
    """Validate a decoded batch column-wise; ``tenants[i]`` is request i's token tenant (None: open)."""
    n_req = len(bodies)
    req_bad = np.zeros(n_req, dtype=bool)
    # resource_logs → its request; its service name
    rl_list = batch.column("resource_logs")
    rl_req = as_numpy(pc.list_parent_indices(rl_list))
    rl = pc.list_flatten(rl_list)
    res_attrs = pc.struct_field(rl, ["resource", "attributes"])
    services = np.full(len(rl), "", dtype=object)
    ra_parent = as_numpy(pc.list_parent_indices(res_attrs))
    ra = pc.list_flatten(res_attrs)
    if len(ra):
        ra_values = pc.struct_field(ra, "value")
        req_bad[rl_req[ra_parent[other_kind(ra_values)]]] = True  # nested values: upb decides
        is_service = as_numpy(pc.equal(pc.struct_field(ra, "key"), A.SERVICE_NAME), bool)
        idx = np.nonzero(is_service)[0]
        if len(idx):
            parents, first = np.unique(ra_parent[idx], return_index=True)
            names = pc.struct_field(ra_values, "string_value").take(pa.array(idx[first]))
            services[parents] = [s[:SERVICE_NAME_CHARS] if s is not None else "" for s in names.to_pylist()]
    # scope_logs → resource_logs; scope attributes may hold nested values too
    sl_list = pc.struct_field(rl, "scope_logs")
    sl_rl = as_numpy(pc.list_parent_indices(sl_list))
    sl = pc.list_flatten(sl_list)
    sa_list = pc.struct_field(sl, ["scope", "attributes"])
    sa = pc.list_flatten(sa_list)
    if len(sa):
        bad = other_kind(pc.struct_field(sa, "value"))
        req_bad[rl_req[sl_rl[as_numpy(pc.list_parent_indices(sa_list))[bad]]]] = True
    lr_list = pc.struct_field(sl, "log_records")
    rec_rl = sl_rl[as_numpy(pc.list_parent_indices(lr_list))]
    records = pc.list_flatten(lr_list)
    n = len(records)
    rec_req = rl_req[rec_rl]
    received = np.bincount(rec_req, minlength=n_req)

    # stage 3: audit or not (a record without event_name names itself in an attribute: reference)
    event_name = pc.struct_field(records, "event_name")
    name_len = as_numpy(pc.utf8_length(event_name))
    audit = as_numpy(pc.starts_with(event_name, A.EVENT_NAME_PREFIX), bool) & (
        name_len > len(A.EVENT_NAME_PREFIX)
    )
    rec_bad = audit & (name_len > 256)
    req_bad[rec_req[name_len == 0]] = True
    dropped = np.bincount(rec_req, weights=~audit, minlength=n_req).astype(np.int64)
    if schemas is not None and schemas.by_name:
        rec_bad |= audit & as_numpy(pc.is_in(event_name, pa.array(list(schemas.by_name))), bool)

    # attributes: one row each, with its record
    attr_list = pc.struct_field(records, "attributes")
    rec_bad |= as_numpy(pc.list_value_length(attr_list)) > MAX_ATTRIBUTES
    a_rec = as_numpy(pc.list_parent_indices(attr_list))
    attrs = pc.list_flatten(attr_list)
    keys = pc.struct_field(attrs, "key")
    values = pc.struct_field(attrs, "value")
    svalue = pc.struct_field(values, "string_value")
    ivalue = pc.struct_field(values, "int_value")
    other = other_kind(values) | ~as_numpy(pc.is_valid(values), bool)
    req_bad[rec_req[a_rec[other & as_numpy(pc.is_valid(pc.struct_field(values, "array_value")), bool)]]] = (
        True
    )
    req_bad[rec_req[a_rec[other & as_numpy(pc.is_valid(pc.struct_field(values, "kvlist_value")), bool)]]] = (
        True
    )
    rec_bad[a_rec[other]] = True
    is_string = as_numpy(pc.is_valid(svalue), bool)
    rec_bad[
        a_rec[as_numpy(pc.fill_null(pc.greater(pc.utf8_length(svalue), MAX_VALUE_CHARS), False), bool)]
    ] = True
    encoded = pc.dictionary_encode(keys)
    key_names = encoded.dictionary.to_pylist()
    key_codes = as_numpy(encoded.indices)
    code_of = {k: i for i, k in enumerate(key_names)}
    mapped_codes = np.array([k in MAPPED for k in key_names], dtype=bool)
    is_mapped = mapped_codes[key_codes] if len(key_codes) else np.zeros(0, dtype=bool)
    by_key = np.argsort(key_codes, kind="stable")  # each key's attributes, in record order
    key_bounds = np.searchsorted(key_codes[by_key], np.arange(len(key_names) + 1))

    def positions(code: int) -> np.ndarray:
        return by_key[key_bounds[code] : key_bounds[code + 1]]

    def column(key: str) -> tuple[pa.Array, np.ndarray]:
        """The mapped attribute's string value per record (null where absent), and presence."""
        code = code_of.get(key)
        present = np.zeros(n, dtype=bool)
        if code is None:
            return pa.nulls(n, pa.string()), present
        where = positions(code)
        owners = a_rec[where]
        repeated = owners[1:] == owners[:-1]
        if repeated.any():
            rec_bad[owners[1:][repeated]] = True  # a repeated key: first place, last value
        if key != A.HTTP_STATUS and key != A.EVENT_NAME_ATTR:
            rec_bad[owners[~is_string[where]]] = True  # an int where text is due: reference
        pos = np.full(n, -1, dtype=np.int64)
        pos[owners] = where
        present[owners] = True
        taken = svalue.take(pa.array(pos, mask=pos < 0))
        limit = _LIMITS.get(key)
        if limit is not None:
            rec_bad[as_numpy(pc.fill_null(pc.greater(pc.utf8_length(taken), limit), False), bool)] = True
        return taken, present

    cols: dict[str, pa.Array] = {}
    event_id, has_id = column(A.EVENT_ID)
    rec_bad |= ~has_id | ~as_numpy(pc.fill_null(pc.match_substring_regex(event_id, _UUID), False), bool)
    claimed, _ = column(A.TENANT_ID)
    user_id, has_user = column(A.USER_ID)
    alias, has_alias = column(A.USER_ID_ALIAS)
    rec_bad |= ~has_user & ~has_alias
    user_id = pc.if_else(pa.array(has_user), user_id, alias)
    action, _ = column(A.ACTION)
    rec_bad |= ~as_numpy(pc.fill_null(is_verb(action), False), bool)
    outcome, _ = column(A.OUTCOME)
    outcome = pc.if_else(pc.equal(pc.fill_null(outcome, ""), ""), A.DEFAULT_OUTCOME, outcome)
    rec_bad |= ~as_numpy(pc.is_in(outcome, _OUTCOMES), bool)
    actor_type, _ = column(A.ACTOR_TYPE)
    actor_type = pc.if_else(pc.equal(pc.fill_null(actor_type, ""), ""), A.DEFAULT_ACTOR_TYPE, actor_type)
    rec_bad |= ~as_numpy(is_verb(actor_type), bool)
    resource_type, _ = column(A.RESOURCE_TYPE)
    rec_bad |= as_numpy(pc.equal(pc.fill_null(resource_type, ""), ""), bool)
    for key in (A.RESOURCE_ID, A.CLIENT_ADDRESS, A.USER_AGENT, A.SESSION_ID, A.HTTP_METHOD, A.HTTP_ROUTE):
        cols[key] = pc.fill_null(column(key)[0], "")
    rec_bad |= ~as_numpy(pc.string_is_ascii(cols[A.HTTP_METHOD]), bool)  # str.upper() beyond ASCII: reference
    changes_in, _ = column(A.CHANGES)
    column(A.EVENT_NAME_ATTR)  # only its repetition matters
    status_code = code_of.get(A.HTTP_STATUS)
    status = np.zeros(n, dtype=np.int64)
    if status_code is not None:
        where = positions(status_code)
        owners = a_rec[where]
        rec_bad[owners[1:][owners[1:] == owners[:-1]]] = True
        rec_bad[owners[is_string[where]]] = True  # a text status is parsed by the reference
        ints = as_numpy(pc.fill_null(ivalue.take(pa.array(where)), 0))
        status[owners] = np.where((ints >= 0) & (ints <= 65535), ints, 0)

    # tenant: the token's, or the claimed one in open mode; a mismatch is the reference's to reject
    token = pa.array([tenants[r] for r in range(n_req)], pa.string()).take(pa.array(rec_req))
    claimed = pc.fill_null(claimed, "")
    rec_bad |= as_numpy(
        pc.fill_null(pc.and_(pc.not_equal(claimed, ""), pc.not_equal(claimed, token)), False), bool
    )
    tenant = pc.if_else(pc.is_null(token), claimed, token)
    rec_bad |= as_numpy(pc.equal(tenant, ""), bool)

    # event time: required, storable, inside the tenant's window (window.py's rules)
    t = as_numpy(pc.struct_field(records, "time_unix_nano"), np.uint64)
    observed = as_numpy(pc.struct_field(records, "observed_time_unix_nano"), np.uint64)
    nanos = np.where(t != 0, t, observed)
    rec_bad |= (nanos == 0) | (nanos > _MAX_TIME_NS)
    created = (np.minimum(nanos, _MAX_TIME_NS) // 1000).astype(np.int64)
    rec_bad |= created > received_at_us + MAX_FUTURE_SKEW // dt.timedelta(microseconds=1)
    margin_day = (received_at_us + EXPIRY_MARGIN // dt.timedelta(microseconds=1)) // _US_PER_DAY
    t_enc = pc.dictionary_encode(tenant)
    t_codes = as_numpy(t_enc.indices)
    keep_days, hot_keep, no_policy = policies(t_enc.dictionary.to_pylist(), retain_days, hot_days)
    rec_bad |= no_policy[t_codes] if n else False  # a policy that fails to read: the reference raises
    if n:
        rec_bad |= created < (margin_day - keep_days[t_codes] + 1) * _US_PER_DAY
    day = created // _US_PER_DAY
    retain_until = day + (keep_days[t_codes] if n else 0)
    hot_until = day + (hot_keep[t_codes] if n else 0)
    rec_bad |= (retain_until > 2_000_000) | (hot_until > 2_000_000)  # date overflow: reference raises

    # body: a string body is the reason; nested or several kinds: reference
    body = pc.struct_field(records, "body")
    body_other = other_kind(body) & as_numpy(pc.is_valid(body), bool)
    rec_bad |= body_other
    reason = pc.fill_null(pc.struct_field(body, "string_value"), "")
    rec_bad |= as_numpy(pc.greater(pc.utf8_length(reason), MAX_VALUE_CHARS), bool)

    # NUL and bidi controls anywhere in the text a row shows: the reference cleans or flags them
    unsafe = f"[\\x00{BIDI_CONTROLS}]"
    for text, owner in ((keys, a_rec), (svalue, a_rec), (reason, None), (event_name, None)):
        if not may_be_unsafe(text):
            continue
        hit = as_numpy(pc.fill_null(pc.match_substring_regex(text, unsafe), False), bool)
        if hit.any():
            rec_bad[owner[hit] if owner is not None else hit] = True
    for r, tok in enumerate(tenants):
        if tok is not None and any(c in BIDI_CONTROLS or c == "\x00" for c in tok):
            req_bad[r] = True
    if any(any(c in BIDI_CONTROLS for c in s) for s in services):
        req_bad[rl_req[[i for i, s in enumerate(services) if any(c in BIDI_CONTROLS for c in s)]]] = True

    # extras: the attributes without a column, wire order, none repeated
    extra_idx = np.nonzero(~is_mapped)[0]
    if len(extra_idx):
        ex_rec = a_rec[extra_idx]
        ex_keys = keys.take(pa.array(extra_idx))
        rec_bad[ex_rec[as_numpy(pc.greater(pc.utf8_length(ex_keys), 256), bool)]] = True
        pairs = pa.table({"r": ex_rec, "k": ex_keys}).group_by(["r", "k"]).aggregate([("r", "count")])
        repeated = as_numpy(pc.greater(pairs.column("r_count"), 1), bool)
        if repeated.any():
            rec_bad[as_numpy(pairs.column("r").combine_chunks())[repeated]] = True

    # changes: canonical text, per record (orjson); anything it refuses: reference
    changes = changes_column(changes_in, audit & ~rec_bad, rec_bad)

    req_bad |= np.bincount(rec_req, weights=audit & rec_bad, minlength=n_req) > 0
    keep = audit & ~req_bad[rec_req]
    accepted = np.bincount(rec_req, weights=keep, minlength=n_req).astype(np.int64)
    mask = pa.array(keep)
    sel = np.nonzero(keep)[0]
    m = len(sel)

    everything = m == n

    def f(array: pa.Array) -> pa.Array:
        return array if everything else array.filter(mask)

    if len(extra_idx):
        kept_extra = extra_idx[keep[a_rec[extra_idx]]]
    else:
        kept_extra = extra_idx
    counts = np.bincount(a_rec[kept_extra], minlength=n)[sel] if len(kept_extra) else np.zeros(m, np.int64)
    offsets = np.zeros(m + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(counts)
    ex_k = keys.take(pa.array(kept_extra, pa.int64()))
    ex_v = pc.if_else(
        pc.is_valid(svalue.take(pa.array(kept_extra, pa.int64()))),
        svalue.take(pa.array(kept_extra, pa.int64())),
        pc.cast(ivalue.take(pa.array(kept_extra, pa.int64())), pa.string()),
    )
    attributes = pa.MapArray.from_arrays(pa.array(offsets), ex_k, ex_v)
    columns = {
        "id": f(event_id),
        "tenant_id": f(tenant),
        "user_id": f(user_id),
        "actor_type": f(actor_type),
        "action": f(action),
        "outcome": f(outcome),
        "resource_type": f(resource_type),
        "resource_id": f(cols[A.RESOURCE_ID]),
        "event_name": f(event_name),
        "changes": f(changes),
        "ip_address": f(cols[A.CLIENT_ADDRESS]),
        "user_agent": f(cols[A.USER_AGENT]),
        "created_at": pa.array(created[sel], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "received_at": pa.repeat(pa.scalar(received_at_us, pa.timestamp("us", tz="UTC")), m),
        "service_name": pa.array(services.tolist(), pa.string()).take(pa.array(rec_rl[sel])),
        "trace_id": hex_ids(f(pc.struct_field(records, "trace_id")), 16),
        "span_id": hex_ids(f(pc.struct_field(records, "span_id")), 8),
        "session_id": f(cols[A.SESSION_ID]),
        "http_method": pc.ascii_upper(f(cols[A.HTTP_METHOD])),
        "http_route": f(cols[A.HTTP_ROUTE]),
        "http_status": pa.array(status[sel], pa.uint16()),
        "reason": f(reason),
        "attributes": attributes,
        "retain_until": pa.array(retain_until[sel].astype(np.int32), pa.int32()).cast(pa.date32()),
        "hot_until": pa.array(hot_until[sel].astype(np.int32), pa.int32()).cast(pa.date32()),
    }
    table = pa.Table.from_arrays([columns[name] for name in ARROW_SCHEMA.names], schema=ARROW_SCHEMA)
    return Decoded(
        table=table,
        fallback=req_bad.tolist(),
        received=received.tolist(),
        dropped=dropped.tolist(),
        accepted=accepted.tolist(),
    )
