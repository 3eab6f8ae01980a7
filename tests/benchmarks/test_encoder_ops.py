"""`python -m benchmarks.encoder_ops` on the tiny bundle: each graph's window split by operator type."""

import json

from tests.conftest import run_cli


def test_each_encoder_window_is_split_by_operator(bundle_f32, tmp_path):
    # a batch that does not divide the window's eight frames: the last run is short, the window still whole
    result = run_cli("benchmarks.encoder_ops", "--bundle", str(bundle_f32), "--windows", "2", "--batch", "3",
                     "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "encoder_ops.json").read_text())
    assert data["meta"]["batch"] == 3 and "batch 3" in result.stdout.splitlines()[0]
    for role in ("vision", "audio"):
        r = data["results"][role]
        assert len(r["window_ms"]) == 2 and min(r["window_ms"]) > 0
        assert "MatMul" in r["ops"] or "Gemm" in r["ops"] or "FusedMatMul" in r["ops"], r["ops"]
        # the kernels are what a window spends: never more, and most of it
        window = sum(r["window_ms"]) / 2
        assert 0.3 * window < sum(r["ops"].values()) <= 1.05 * window + 1
    assert "| **window, p50** |" in result.stdout and data["meta"]["cpu"] in result.stdout.splitlines()[0]


def test_a_variant_the_bundle_lacks_is_refused_in_one_line(bundle_f32, tmp_path):
    result = run_cli("benchmarks.encoder_ops", "--bundle", str(bundle_f32), "--variant", "int8-static",
                     "--out", str(tmp_path))
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "vision@int8-static" in result.stderr
