"""otel-audit receiver: OTLP in, audit events filtered, checked and enriched, stored in ClickHouse.

The folder tree is the pipeline: ``transport`` (OTLP/gRPC, OTLP/HTTP) → ``pipeline``
(decode → filter → validate → enrich) → ``writer`` (group commit) → ``store`` (chDB or a
ClickHouse server). ``admin`` reads through the same store.
"""
