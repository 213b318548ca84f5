-- otel-audit schema: smaller compressed blocks for the events table (issue 8, search speed).
-- A search hit costs one read per column per part holding it, and that read decompresses from
-- the start of the hit's granule up to the row; with 128 KiB blocks (the default is 1 MiB) a
-- wide column's granule is several blocks and a hit decompresses about half as much. Measured
-- on 10 M events: tenant + IP 24 -> 20 ms, tenant only 23 -> 19.5 ms; same compressed size,
-- same export CPU. Applies to parts written or merged from now on. Idempotent.
ALTER TABLE {db}.audit_events MODIFY SETTING max_compress_block_size = 131072, min_compress_block_size = 16384;
