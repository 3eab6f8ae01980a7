"""`python -m benchmarks.latency` on the tiny shapes: both paths, the table, JSON and chart."""

import json

from tests.conftest import run_cli


def test_latency_report_on_tiny_shapes(tmp_path):
    from quant.cpu import has_bf16

    out, scratch = tmp_path / "out", tmp_path / "scratch"
    scratch.mkdir()
    result = run_cli("benchmarks.latency", "--shapes", "tiny", "--llm-types", "F16,Q4_K_M", "--encoders", "fp32,int8-dynamic",
                     "--repeats", "2", "--warmup", "1", "--tokens", "4", "--threads", "2", "--out", str(out),
                     timeout=600, env={"TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stderr
    assert not list(scratch.glob("affectgpt-latency-*"))  # the built weights and bundle do not outlive the run
    data = json.loads((out / "latency.json").read_text())
    results = data["results"]
    runtime = {f"runtime ort-cpu {e} {t}" for e in ("fp32", "int8-dynamic") for t in ("F16", "Q4_K_M")}
    assert set(results) == {"pytorch-reference"} | runtime | ({"pytorch-bf16"} if has_bf16() else set())
    for name, r in results.items():
        assert {"vision", "audio", "fusion", "llm_prefill", "llm_decode_per_token", "end_to_end"} <= set(r["stats"])
        assert r["stats"]["end_to_end"]["n"] == 2 and r["peak_rss_mb"] > 0
    for name in runtime:
        assert results[name]["stats"]["llm_prefill_warm"]["p50"] > 0
    f16, q4 = results["runtime ort-cpu fp32 F16"], results["runtime ort-cpu fp32 Q4_K_M"]
    assert q4["llm_bytes"] < f16["llm_bytes"] and 0 < f16["roofline"]["fraction"]
    assert f16["peak_rss_mb"] < results["pytorch-reference"]["peak_rss_mb"]
    assert data["meta"]["bandwidth_gbs"] > 0.5 and data["meta"]["peaks"]["fp32_gflops"] > 0
    ladder = {row["encoders"]: row for row in data["meta"]["encoder_ladder"]}
    assert ladder["fp32"]["cos_fused"] > 0.99999 and 0.9 < ladder["int8-dynamic"]["cos_fused"] <= 1.0
    assert ladder["int8-dynamic"]["mb"] < ladder["fp32"]["mb"] and ladder["fp32"]["vision_gflops"] > 0
    md = (out / "latency.md").read_text()
    assert "faster than pytorch-reference" in md and "Encoder ladder" in md
    assert any(flag in md for flag in ("avx2", "neon", "no SIMD"))
    assert data["meta"]["machine"]["cpu"] in md.splitlines()[0]  # the name with its family and model
    assert (out / "latency.png").stat().st_size > 1000


def test_a_windows_end_to_end_stops_where_the_window_does():
    """The runtime path measures a warm prefill after the window: it must not count in the window's end to end."""
    from benchmarks.latency import STAGES, _record

    class Watch:
        ms = {"vision": 5.0, "llm_prefill": 3.0}

        def total_ms(self):
            return 20.0  # the window (8) and the warm-prefill measurement after it

    timings = {s: [] for s in STAGES}
    _record(timings, Watch(), {"llm_decode_per_token": 1.0, "end_to_end": 8.0})
    assert timings["end_to_end"] == [8.0] and timings["vision"] == [5.0]
    _record(timings, Watch(), {})
    assert timings["end_to_end"] == [8.0, 20.0]  # the reference path: the whole watch is the window


def test_a_bundle_alone_has_no_flop_count_and_says_so(tmp_path):
    """`--bundle B` runs no PyTorch reference, so no FLOPs are counted: the ladder says "–", and its JSON holds null
    (NaN is not JSON: `jq` refuses the file)."""
    import numpy as np

    from benchmarks.latency import _of_peak, encoder_ladder

    features = tmp_path / "f.npz"
    rows = np.ones((3, 4), np.float32)
    np.savez(features, face=rows, audio=rows, fused=rows)
    windows = {"vision": [5.0, 7.0], "audio": [3.0]}
    results = {"runtime ort-cpu fp32 default": {"encoder_samples": windows, "encoder_bytes": 2e6}}
    (row,) = encoder_ladder(results, {"runtime ort-cpu fp32 default": str(features)}, ["fp32"], {"fp32_gflops": 100.0})
    assert row["vision_ms"] == 6.0 and row["vision_gflops"] is None and row["audio_of_peak"] is None
    json.dumps(row, allow_nan=False)
    assert _of_peak(None, None) == "–" and _of_peak(412.3, 0.69) == "412 (69 %)"
