"""Benchmarks: scripts run from the repository root as `python -m bench.NAME` (each prints a table)."""
