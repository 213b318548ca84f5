-- otel-audit on a ClickHouse server: users, roles and grants (README "Production").
-- Run once as a ClickHouse administrator, after replacing the two CHANGE-ME passwords:
--   clickhouse-client --multiquery < grants.sql
-- Not run by the receiver, and not on chDB (the embedded engine has no RBAC; its read paths
-- run on a `readonly = 1` session instead). Database `audit`, as in SPEC section 6.
--
-- Append-only by construction: no role here holds ALTER UPDATE, ALTER DELETE, lightweight
-- DELETE, TRUNCATE, DROP or ALTER MODIFY/DROP COLUMN on the audit tables. Expiry is the
-- server's own TTL; whole-partition archive operations belong to a separate, separately
-- audited operator account, never to the service.

-- the receiver (`otel-audit serve`): insert events and checkpoints, read for dedupe, chain
-- heads and verify; create the schema if missing and add columns/indexes on upgrade
CREATE ROLE IF NOT EXISTS otel_audit_ingest;
GRANT CREATE DATABASE ON audit.* TO otel_audit_ingest;
GRANT CREATE TABLE ON audit.* TO otel_audit_ingest;
GRANT ALTER ADD COLUMN, ALTER ADD INDEX ON audit.* TO otel_audit_ingest;
GRANT INSERT, SELECT ON audit.audit_events TO otel_audit_ingest;
GRANT INSERT, SELECT ON audit.audit_checkpoints TO otel_audit_ingest;
-- the alert evaluator's positions, lease claims and delivery records (docs/ALERTS.md)
GRANT INSERT, SELECT ON audit.alert_state TO otel_audit_ingest;
-- log streams' positions, lease claims and replays (docs/STREAMS.md)
GRANT INSERT, SELECT ON audit.stream_state TO otel_audit_ingest;
-- the verifiable log: tree tiles and signed checkpoint notes (append-only, like the events)
GRANT INSERT, SELECT ON audit.audit_log_tiles TO otel_audit_ingest;
GRANT INSERT, SELECT ON audit.audit_log_checkpoints TO otel_audit_ingest;
-- the versions `otel-audit migrate` (and every store start) applied and recorded
GRANT INSERT, SELECT ON audit.schema_migrations TO otel_audit_ingest;
-- source-side gaps (filled by a materialized view in the events INSERT) and journal findings;
-- `otel-audit journal-ack` records acknowledgements with these credentials
GRANT CREATE VIEW ON audit.* TO otel_audit_ingest;
GRANT INSERT, SELECT ON audit.source_seqs TO otel_audit_ingest;
GRANT INSERT, SELECT ON audit.journal_findings TO otel_audit_ingest;
GRANT INSERT, SELECT ON audit.journal_finding_acks TO otel_audit_ingest;

-- readers (Grafana, auditors, `otel-audit query|export|verify --store clickhouse://...`)
CREATE ROLE IF NOT EXISTS otel_audit_reader;
GRANT SELECT ON audit.audit_events TO otel_audit_reader;
GRANT SELECT ON audit.audit_checkpoints TO otel_audit_reader;
GRANT SELECT ON audit.audit_log_tiles TO otel_audit_reader;
GRANT SELECT ON audit.audit_log_checkpoints TO otel_audit_reader;
-- a reader opening a store sees the schema is current with this one SELECT (no CREATE needed)
GRANT SELECT ON audit.schema_migrations TO otel_audit_reader;
GRANT SELECT ON audit.source_seqs TO otel_audit_reader;
GRANT SELECT ON audit.journal_findings TO otel_audit_reader;
GRANT SELECT ON audit.journal_finding_acks TO otel_audit_reader;
-- Grafana's ClickHouse plugin (clickhouse-go) sends its query timeout as max_execution_time on
-- every query: changeable under readonly, bounded
CREATE SETTINGS PROFILE IF NOT EXISTS otel_audit_readonly SETTINGS readonly = 1,
    max_execution_time = 60 MAX 300 CHANGEABLE_IN_READONLY;

CREATE USER IF NOT EXISTS otel_audit_writer IDENTIFIED WITH sha256_password BY 'CHANGE-ME-writer'
    DEFAULT ROLE otel_audit_ingest;
GRANT otel_audit_ingest TO otel_audit_writer;

CREATE USER IF NOT EXISTS otel_audit_reader IDENTIFIED WITH sha256_password BY 'CHANGE-ME-reader'
    SETTINGS PROFILE 'otel_audit_readonly' DEFAULT ROLE otel_audit_reader;
GRANT otel_audit_reader TO otel_audit_reader;
