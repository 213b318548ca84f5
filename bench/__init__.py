"""Benchmarks for the performance targets of docs/BENCHMARKS.md (scripts, not tests).

Each ``python -m bench.<name>`` prints its figures and the ratio to a baseline measured in the
same run (the machine is noisy); ``python -m bench.all --quick`` runs a short version of all five.
"""
