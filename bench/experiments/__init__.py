"""Experiments kept for their measurements (docs/BENCHMARKS.md); not part of the receiver."""
