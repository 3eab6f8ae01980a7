"""The benchmarks package's one error class: a benchmark that cannot run (missing tables, bad answers file)."""

from runtime.errors import EdgeError


class BenchmarkError(EdgeError):
    pass
