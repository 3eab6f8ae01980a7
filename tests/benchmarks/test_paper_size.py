"""The paper's full size on this machine: the projection's arithmetic (fast), and the 7B run itself (slow, one command:
python -m pytest -m slow tests/benchmarks/test_paper_size.py — about an hour and 25 GB of disk on two cores)."""

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_the_projection_follows_bandwidth_and_ops():
    from benchmarks.paper_size import JETSONS, UTILISATION, projection

    flops = {"vision": 1.0e12, "audio": 0.5e12, "llm_per_token": 15e9}
    rows = {r["device"]: r for r in projection({"bundle_gb": 7.0}, flops, llm_bytes=4_700_000_000,
                                              bandwidth_fraction=0.8, prompt_tokens=100, tokens=20)}
    agx, nano = rows["AGX Orin 64GB"], rows["Orin Nano 8GB"]
    assert agx["decode_tok_s"] == pytest.approx(204.8e9 * 0.8 / 4.7e9)
    assert agx["encoders_ms"] == pytest.approx(1.5e12 / (275 / 2 * 1e12 * UTILISATION) * 1e3)
    assert nano["decode_tok_s"] < agx["decode_tok_s"] and nano["prefill_ms"] > agx["prefill_ms"]
    assert agx["fits"] and not nano["fits"]  # 7 GB is more than 80 % of 8 GB
    assert set(rows) == set(JETSONS)


@pytest.mark.slow
def test_the_7b_shapes_export_in_bounded_memory_and_answer_windows(tmp_path):
    out = Path(os.environ.get("AFFECTGPT_RESULTS", tmp_path)) / "paper7b"
    done = run_cli("benchmarks.paper_size", "--out", str(out), timeout=3 * 3600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "paper_size.json").read_text())
    assert report["export"]["peak_anon_mb"] <= 12 * 1024
    assert report["latency"]["tokens_per_s"] > 0 and report["bundle_bytes"]["llm@q4_k_m"] > 3e9
