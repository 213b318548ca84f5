"""Tamper evidence: the per-chain hash chain (chain.py), its byte encoding (canonical.py),
signed checkpoints (checkpoints.py) and verification (verify.py). docs/INTEGRITY.md explains it."""
