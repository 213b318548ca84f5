"""Tamper evidence: the verifiable log (Merkle trees per tenant and receiver, signed checkpoints,
proofs, verify). docs/INTEGRITY.md explains it."""
