-- otel-audit schema 030: a retried insert batch is stored once.
-- The server engine sends every batch with an insert_deduplication_token (a digest of its
-- event ids) and retries it after a network error; ReplicatedMergeTree deduplicates such
-- retries by default, a plain MergeTree only within this window of recent blocks.
ALTER TABLE {db}.audit_events MODIFY SETTING non_replicated_deduplication_window = 1000;
