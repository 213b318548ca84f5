-- Automated log review (SPEC section 10, receiver/alerts/): the evaluator's bookkeeping, append-only.
-- kind = 'position' (key: a log, value: the last leaf evaluated), 'delivered' / 'dead' (key: alert id,
-- value: destination name), 'lease' (key: lease term, value: the receiver holding it), 'secret'
-- (value: the key alert ids are derived with). The alerts themselves are audit events
-- (audit.alert.fired, audit.alert.reviewed) in the events table.
CREATE TABLE IF NOT EXISTS {db}.alert_state
(
    kind   LowCardinality(String),
    key    String,
    value  String,
    at     DateTime64(6, 'UTC')
)
ENGINE = MergeTree
ORDER BY (kind, key, at);
