-- Log streams (SPEC section 11, receiver/streams/): each stream's bookkeeping, append-only.
-- kind = 'position' (key: a log, value: the NEXT index of that log to deliver; the newest row
-- per (stream, key) counts, so a replay can move a position back), 'lease' (key: lease term,
-- value: the receiver delivering the stream in that term), 'reset' (a replay; value: the
-- time it asked for), so a receiver delivering the stream reloads its positions.
CREATE TABLE IF NOT EXISTS {db}.stream_state
(
    stream LowCardinality(String),
    kind   LowCardinality(String),
    key    String,
    value  String,
    at     DateTime64(6, 'UTC')
)
ENGINE = MergeTree
ORDER BY (stream, kind, key, at);
