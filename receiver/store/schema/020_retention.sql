-- Retention (issue 5): the TTL the retention job last applied, and legal holds.
-- The staging and restored tables copy audit_events' final structure, so the job creates them
-- (receiver/store/retention_sql.py side_tables) after every schema file has run.

-- The policies and holds the events table's TTL was last derived from (JSON), so the job
-- modifies the TTL only when they change.
CREATE TABLE IF NOT EXISTS {db}.retention_ttl
(
    applied_at DateTime64(6, 'UTC'),
    spec       String
)
ENGINE = MergeTree
ORDER BY applied_at;

-- Append-only history of holds: the latest row per tenant says whether it is held.
CREATE TABLE IF NOT EXISTS {db}.legal_holds
(
    tenant_id  String,
    held       UInt8,
    reason     String,
    actor      String,
    changed_at DateTime64(6, 'UTC')
)
ENGINE = MergeTree
ORDER BY (tenant_id, changed_at);
