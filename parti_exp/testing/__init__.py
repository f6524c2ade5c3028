"""Helpers for tests and benchmarks: writers of the datasets' on-disk formats, with no data inside."""
