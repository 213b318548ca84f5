-- otel-audit schema: the verifiable log (SPEC section 7, docs/INTEGRITY.md).
-- Events keep their columns: for rows written from this version on, chain_id holds the log
-- origin "otel-audit/<tenant>/<instance>", seq the 0-based leaf index and hash the RFC 9162
-- leaf hash (prev_hash is unused, zero). Rows of the retired v1 hash chain keep their values.
--
-- The tree's hashes, tlog-tiles style: a tile is up to 256 hashes of one level; a partial
-- tile is written again (wider) each time it grows, readers take the widest (argMax by width).
-- The service only ever inserts; the engine's merges keep the widest copy of each tile (a
-- trickle of one-event commits would otherwise keep ~255 copies of every tile). Never archived
-- or expired with the events, so proofs outlive the rows they prove.
CREATE TABLE IF NOT EXISTS {db}.audit_log_tiles
(
    origin     String,
    level      UInt8,
    idx        UInt64,
    width      UInt16,
    hashes     String,
    written_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(width)
ORDER BY (origin, level, idx);

-- Signed checkpoints (C2SP tlog-checkpoint notes), one row each; tree_size 0 is the note
-- that registers a new log (the set of logs is signed state).
CREATE TABLE IF NOT EXISTS {db}.audit_log_checkpoints
(
    origin     String,
    tenant_id  String,
    tree_size  UInt64,
    root_hash  String,
    key_id     String,
    note       String,
    created_at DateTime64(6, 'UTC')
)
ENGINE = MergeTree
ORDER BY (origin, tree_size, created_at);
