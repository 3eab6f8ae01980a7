"""`python -m benchmarks.encoder_steps` on the tiny bundle: every step made, timed and compared with fp32."""

import json
import shutil

import pytest

from tests.conftest import run_cli


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="the static steps calibrate on espeak-ng speech")
def test_every_step_is_made_timed_and_scored(bundle_f32, tmp_path):
    latency = tmp_path / "latency.json"  # the FLOP counts and the peak a latency run of these shapes would give
    latency.write_text(json.dumps({"results": {"pytorch-reference": {"flops": {"vision": 2e8, "audio": 1e8}}},
                                   "meta": {"peaks": {"int8_gops": 100.0}}}))
    result = run_cli("benchmarks.encoder_steps", "--bundle", str(bundle_f32), "--latency", str(latency),
                     "--rounds", "1", "--out", str(tmp_path / "out"), timeout=600)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "out" / "encoder_steps.json").read_text())["rows"]
    assert [r["step"] for r in rows][0] == "fp32" and len(rows) == 6
    for r in rows:
        for role in ("vision", "audio"):
            assert r[role]["windows"] == 2 and r[role]["p50_ms"] >= r[role]["best_ms"] > 0
            assert 0.9 < r[role]["cosine"] <= 1.0 + 1e-6 or r["step"] == "+ dynamic convolutions", (r["step"], role)
    assert rows[-1]["audio"]["mb"] < rows[-2]["audio"]["mb"]  # int8-static's convolutions are 8-bit
    assert "| + static convolutions (int8-static) |" in result.stdout

    bad = run_cli("benchmarks.encoder_steps", "--bundle", str(bundle_f32), "--latency", str(tmp_path / "nope.json"),
                  "--out", str(tmp_path / "out2"))
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "latency.json" in bad.stderr
