"""`python -m benchmarks.latency` on the tiny shapes: both paths, the table, JSON and chart."""

import json

from tests.conftest import run_cli


def test_latency_report_on_tiny_shapes(tmp_path):
    result = run_cli("benchmarks.latency", "--shapes", "tiny", "--llm-types", "F16,Q4_K_M", "--repeats", "2",
                     "--warmup", "1", "--tokens", "4", "--threads", "2", "--out", str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "latency.json").read_text())
    results = data["results"]
    assert set(results) == {"pytorch-reference", "runtime ort-cpu F16", "runtime ort-cpu Q4_K_M"}
    for name, r in results.items():
        assert {"vision", "audio", "fusion", "llm_prefill", "llm_decode_per_token", "end_to_end"} <= set(r["stats"])
        assert r["stats"]["end_to_end"]["n"] == 2 and r["peak_rss_mb"] > 0
    assert results["runtime ort-cpu Q4_K_M"]["llm_bytes"] < results["runtime ort-cpu F16"]["llm_bytes"]
    assert 0 < results["runtime ort-cpu F16"]["roofline"]["fraction"]
    assert results["runtime ort-cpu F16"]["peak_rss_mb"] < results["pytorch-reference"]["peak_rss_mb"]
    assert data["meta"]["bandwidth_gbs"] > 0.5
    assert "faster than the PyTorch reference" in (tmp_path / "latency.md").read_text()
    assert (tmp_path / "latency.png").stat().st_size > 1000
