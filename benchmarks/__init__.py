"""Benchmarks and baselines: scripts that print JSON figures, importable from the repository root."""
