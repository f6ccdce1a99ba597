"""Helpers for tests and benchmarks: deterministic data, local servers. Not needed at run time."""
