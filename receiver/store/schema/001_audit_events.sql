-- otel-audit schema v1: one row per audit event (SPEC section 6).
-- {db} is the database name; everything else is literal. Statements are separated by ';'.
CREATE DATABASE IF NOT EXISTS {db};

CREATE TABLE IF NOT EXISTS {db}.audit_events
(
    id            UUID,
    tenant_id     LowCardinality(String),
    user_id       String,
    actor_type    LowCardinality(String),
    action        LowCardinality(String),
    outcome       LowCardinality(String),
    resource_type LowCardinality(String),
    resource_id   String,
    event_name    LowCardinality(String),
    changes       String CODEC(ZSTD(1)),
    ip_address    String,
    user_agent    String CODEC(ZSTD(1)),
    created_at    DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    received_at   DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    service_name  LowCardinality(String),
    trace_id      String,
    span_id       String,
    session_id    String,
    http_method   LowCardinality(String),
    http_route    LowCardinality(String),
    http_status   UInt16,
    reason        String CODEC(ZSTD(1)),
    attributes    Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    -- the last day this row is kept, from the tenant's policy at ingest; the table TTL below is
    -- replaced by the retention job with one derived from the current policies and legal holds
    retain_until  Date,
    -- the day this row may leave the hot store for the archive (created_at + the tenant's hot_days)
    hot_until     Date,
    INDEX idx_user_id     user_id     TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_resource_id resource_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_ip_address  ip_address  TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_id          id          TYPE bloom_filter(0.001) GRANULARITY 4
)
ENGINE = MergeTree
-- by the month rows become due for the archive: the archive job moves a month out whole once
-- it has passed (MOVE PARTITION), so rows leave the hot store only by whole-partition
-- operations or TTL, never by row deletes; and an insert of current events from any number of
-- tenants touches one partition per distinct hot_days, not one per tenant
PARTITION BY toYYYYMM(hot_until)
ORDER BY (tenant_id, created_at, id)
TTL retain_until DELETE
SETTINGS ttl_only_drop_parts = 0, index_granularity = 8192;
