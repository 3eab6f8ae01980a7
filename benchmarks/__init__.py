"""Latency and accuracy benchmarks over bundles; each script prints a table and writes JSON."""
