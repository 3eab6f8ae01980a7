"""The benchmarks package's one error class: a benchmark that cannot run (missing tables, bad answers file)."""


class BenchmarkError(RuntimeError):
    pass
