-- otel-audit schema: tamper evidence (docs/INTEGRITY.md).
-- Every event row carries its place in a hash chain: one chain per tenant per receiver
-- instance (chain_id = "<tenant>/<instance id>"), gap-free seq from 1, and
-- hash = SHA-256(prev_hash || canonical(row)). Rows stored before this schema keep
-- chain_id '' and seq 0 ("unchained").
ALTER TABLE {db}.audit_events ADD COLUMN IF NOT EXISTS chain_id LowCardinality(String) DEFAULT '';
ALTER TABLE {db}.audit_events ADD COLUMN IF NOT EXISTS seq UInt64 DEFAULT 0;
ALTER TABLE {db}.audit_events ADD COLUMN IF NOT EXISTS prev_hash FixedString(32);
ALTER TABLE {db}.audit_events ADD COLUMN IF NOT EXISTS hash FixedString(32);
-- seq grows with arrival time, which created_at (the sort key) follows closely: a minmax
-- index lets verify read a chain in seq ranges without scanning the whole tenant each time.
ALTER TABLE {db}.audit_events ADD INDEX IF NOT EXISTS idx_seq seq TYPE minmax GRANULARITY 1;

-- Signed checkpoints: the auditor's anchor (a copy of each is also written as a JSON file).
CREATE TABLE IF NOT EXISTS {db}.audit_checkpoints
(
    chain_id       String,
    tenant_id      String,
    last_seq       UInt64,
    last_hash      String,
    created_at     DateTime64(6, 'UTC'),
    count          UInt64,
    prev_signature String,
    key_id         String,
    version        UInt8,
    signature      String
)
ENGINE = MergeTree
ORDER BY (chain_id, last_seq);
