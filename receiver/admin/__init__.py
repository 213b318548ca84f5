"""The admin side: HTTP API, UI and exports, reading through the same store as ingest."""
