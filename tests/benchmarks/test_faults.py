"""The fault matrix's fast cases, as the suite's guard: each broken input ends in the policy's outcome (exit
status, windows answered, no traceback, no hang, peak RSS under the bound). The whole matrix and the soak
are slow: `python -m pytest -m slow tests/benchmarks/test_faults.py`."""

import pytest

from benchmarks.faults import CASES, run_case


@pytest.mark.parametrize("case", [c for c in CASES if c.fast], ids=lambda c: c.name)
def test_fault(case, tmp_path):
    result = run_case(case, tmp_path)
    assert result.passed, f"{case.name}: {'; '.join(result.problems)} (stderr: {result.last_stderr})"


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if not c.fast], ids=lambda c: c.name)
def test_fault_slow(case, tmp_path):
    result = run_case(case, tmp_path)
    assert result.passed, f"{case.name}: {'; '.join(result.problems)} (stderr: {result.last_stderr})"


@pytest.mark.slow
def test_soak_keeps_memory_descriptors_and_threads_flat(tmp_path):
    from benchmarks.stream_soak import main

    assert main(["--windows", "5000", "--vad", "mark", "--face-crop", "--out", str(tmp_path)]) == 0
