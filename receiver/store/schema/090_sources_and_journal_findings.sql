-- Source-side gap detection (receiver/sources) and journal tamper findings (receiver/journal/tamper.py).
-- (a table without tenant_id first: the cluster-variant test's reading of files)
CREATE TABLE IF NOT EXISTS {db}.journal_findings
(
    id        UUID,
    found_at  DateTime64(6, 'UTC'),
    journal   String,
    kind      LowCardinality(String),
    detail    String,
    records   UInt64,
    first_seq UInt64,
    last_seq  UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY id;

CREATE TABLE IF NOT EXISTS {db}.journal_finding_acks
(
    finding_id      UUID,
    acknowledged_at DateTime64(6, 'UTC'),
    acknowledged_by String,
    reason          String
)
ENGINE = MergeTree
ORDER BY finding_id;

-- Which audit.source.seq numbers arrived per (tenant, audit.source.id), one roaring bitmap per
-- minute of arrival, filled by a materialized view in the events INSERT itself (no extra insert
-- on the ingest path). Kept when events expire or are archived: it records what arrived.
CREATE TABLE IF NOT EXISTS {db}.source_seqs
(
    tenant_id    LowCardinality(String),
    source_id    String,
    minute       DateTime('UTC'),
    service_name SimpleAggregateFunction(any, String),
    seqs         AggregateFunction(groupBitmap, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant_id, source_id, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.source_seqs_mv TO {db}.source_seqs AS
SELECT
    tenant_id,
    attributes['audit.source.id'] AS source_id,
    toStartOfMinute(received_at) AS minute,
    any(toString(service_name)) AS service_name,
    groupBitmapState(toUInt64OrZero(attributes['audit.source.seq'])) AS seqs
FROM {db}.audit_events
WHERE attributes['audit.source.id'] != ''
GROUP BY tenant_id, source_id, minute;
