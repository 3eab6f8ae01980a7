"""The encoder INT8 ladder, step by step: each way of turning a bundle's fp32 vision and audio graphs into INT8,
timed on the same inputs, with its features' cosine to fp32 and its fraction of this machine's INT8 GEMM peak.

    python -m benchmarks.encoder_steps --bundle B --latency results/latency-0.5b/latency.json --out results/encoder-steps

Inputs: the latency benchmark's clip (decoded frames and espeak-ng speech) through the runtime's encode path.
The static step calibrates on other sentences (their own clips), never on the measured one. FLOP counts and the
INT8 peak are those of the latency run given, so the fractions read as in its ladder. Timing rounds interleave the
steps: on a shared host the speed of the two vCPUs can change for seconds at a time (one process here ran the same
graph at 950 ms and 1270 ms a window within 20 windows), and interleaving spreads such spells over all steps. The
peak is the best of its runs, so each step shows its p50 and its best window, and its fraction of the peak for both.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.errors import BenchmarkError
from benchmarks.metrics import cosine
from benchmarks.report import cpu_name, write_report
from runtime.errors import run_cli


def _dynamic(src: Path, dst: Path, signed: bool, ops: list[str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8 if signed else QuantType.QUInt8,
                     per_channel=signed, op_types_to_quantize=ops)


def _old_int8_dynamic(src: Path, dst: Path, feeds, signed: bool) -> None:
    """What int8-dynamic was before the graph was prepared: the matrix products alone, on the exported graph."""
    _dynamic(src, dst, signed, ["MatMul", "Gemm"])


def _dynamic_convolutions(src: Path, dst: Path, feeds, signed: bool) -> None:
    """Tried and left: convolutions quantized per call too (ConvInteger)."""
    from quant.onnx import prepare

    with tempfile.TemporaryDirectory(dir=dst.parent) as work:
        _dynamic(prepare(src, Path(work) / "prepared.onnx"), dst, signed, ["MatMul", "Gemm", "Conv"])


def _static_matrix_products(src: Path, dst: Path, feeds, signed: bool) -> None:
    """What int8-static was: every matrix product QDQ with calibrated activation ranges (u8 · u8)."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from quant.onnx import _Reader

    quantize_static(str(src), str(dst), _Reader(feeds), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8,
                    calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=["MatMul", "Gemm"])


def _variant(name: str):
    def make(src: Path, dst: Path, feeds, signed: bool) -> None:
        from quant.onnx import convert

        convert(src, dst, name, feeds, signed=signed)
    return make


# (step, what it does, how it is made); the fp32 graph is the first row
STEPS = (
    ("int8 matrix products (before)", "the exported graph, MatMul / Gemm dynamic", _old_int8_dynamic),
    ("+ QDQ matrix products (int8-static before)", "MatMul / Gemm static QDQ, u8·u8, calibrated", _static_matrix_products),
    ("+ dynamic convolutions", "prepared graph, MatMul / Gemm / Conv dynamic (ConvInteger)", _dynamic_convolutions),
    ("+ constants folded, attention fused (int8-dynamic)", "prepared graph, MultiHeadAttention, MatMul / Gemm dynamic",
     _variant("int8-dynamic")),
    ("+ static convolutions (int8-static)", "as int8-dynamic, Conv static QDQ calibrated (not the raw-input one)",
     _variant("int8-static")),
)


def _clips(workdir: Path) -> tuple[str, list[Path]]:
    """The measured clip (the latency benchmark's) and calibration clips of other sentences."""
    from benchmarks.latency import calibration_clips, speech_clip

    calibration = calibration_clips(workdir)
    if not calibration:
        raise BenchmarkError("the static steps calibrate on speech: install espeak-ng")
    return speech_clip(workdir), calibration


def _inputs(bundle: Path, clip: str) -> dict[str, np.ndarray]:
    from runtime.encode import encoder_inputs
    from runtime.manifest import read_manifest
    from runtime.media import read_clip_for

    prep = read_manifest(bundle, verify_hashes=False).preprocessing
    c = read_clip_for(clip, prep)
    x = encoder_inputs(c.frames, c.waveform, prep)
    return {"vision": x.pixels, "audio": x.clips}


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure(bundle: Path, flops: dict, peak: float, workdir: Path, threads: int, rounds: int) -> list[dict]:
    from quant.cpu import has_vnni
    from quant.onnx import calibration_inputs
    from runtime.manifest import read_manifest

    signed = has_vnni()  # as `quant onnx` chooses
    manifest = read_manifest(bundle, verify_hashes=False)
    measured, calibration = _clips(workdir)
    inputs = _inputs(bundle, measured)
    feeds = calibration_inputs(bundle, calibration)
    graphs = {role: {"fp32": bundle / manifest.files[role].path} for role in ("vision", "audio")}
    made = {}
    for step, _, make in STEPS:
        for role in graphs:
            dst = workdir / f"{role}.{len(graphs[role])}.onnx"
            t = time.perf_counter()
            make(graphs[role]["fp32"], dst, feeds[role], signed)
            made[(step, role)] = time.perf_counter() - t
            graphs[role][step] = dst
            print(f"  {role}: {step} made in {made[(step, role)]:.0f} s", file=sys.stderr)
    times = {(s, r): [] for r in graphs for s in graphs[r]}
    outputs = {}
    for role, paths in graphs.items():
        for step, path in paths.items():
            session = _session(path, threads)
            feed = {session.get_inputs()[0].name: inputs[role]}
            outputs[(step, role)] = session.run(None, feed)[0]  # warm-up, and the features
            del session
    for _ in range(rounds):  # steps interleaved, a fresh session each round
        for role, paths in graphs.items():
            for step, path in paths.items():
                session = _session(path, threads)
                feed = {session.get_inputs()[0].name: inputs[role]}
                session.run(None, feed)
                for _ in range(2):
                    t = time.perf_counter()
                    session.run(None, feed)
                    times[(step, role)].append((time.perf_counter() - t) * 1e3)
                del session
    rows = []
    for step in graphs["vision"]:
        row = {"step": step, "how": {s: h for s, h, _ in STEPS}.get(step, "as exported")}
        for role in graphs:
            ms = times[(step, role)]
            p50, best = float(np.median(ms)), float(min(ms))
            gops = flops[role] / p50 / 1e6
            step_peak = peak if step != "fp32" else float("nan")
            row[role] = {"p50_ms": p50, "best_ms": best, "windows": len(ms),
                         "cosine": cosine(outputs[(step, role)], outputs[("fp32", role)]),
                         "mb": graphs[role][step].stat().st_size / 1e6, "gops": gops,
                         "of_peak_p50": gops / step_peak, "of_peak_best": flops[role] / best / 1e6 / step_peak,
                         "make_s": made.get((step, role), 0.0)}
        rows.append(row)
    return rows


def report(rows: list[dict], meta: dict) -> str:
    lines = [f"# Encoder INT8 steps — {meta['bundle']} on {meta['cpu']} ({meta['threads']} threads)", "",
             f"FLOPs per window (from {meta['latency']}): vision {meta['flops']['vision'] / 1e9:.0f} G, audio "
             f"{meta['flops']['audio'] / 1e9:.0f} G; INT8 GEMM peak {meta['peak']:.0f} GOP/s (best of its runs). "
             f"Times are ms per window over {meta['rounds']} interleaved rounds: p50 / best.", "",
             "| step | vision ms | cos vision | vision of INT8 peak (p50 / best) | audio ms | cos audio | "
             "audio of INT8 peak (p50 / best) | MB |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        v, a = r["vision"], r["audio"]
        share = lambda x: "–" if x["of_peak_p50"] != x["of_peak_p50"] else f"{100 * x['of_peak_p50']:.0f} / {100 * x['of_peak_best']:.0f} %"
        lines.append(f"| {r['step']} | {v['p50_ms']:.0f} / {v['best_ms']:.0f} | {v['cosine']:.5f} | {share(v)} | "
                     f"{a['p50_ms']:.0f} / {a['best_ms']:.0f} | {a['cosine']:.5f} | {share(a)} | {v['mb'] + a['mb']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.encoder_steps", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", required=True, help="a bundle with fp32 vision and audio graphs")
    ap.add_argument("--latency", required=True, help="latency.json of `benchmarks.latency` on this bundle's shapes "
                                                     "(its FLOP counts and INT8 peak)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    try:
        latency = json.loads(Path(args.latency).read_text())
        flops = latency["results"]["pytorch-reference"]["flops"]
        peak = latency["meta"]["peaks"]["int8_gops"]
    except (OSError, ValueError, KeyError, TypeError):
        raise BenchmarkError(f"{args.latency}: not a latency.json with the PyTorch reference's FLOP counts and the "
                             "INT8 peak (run benchmarks.latency with --shapes or --checkpoint)") from None
    bundle = Path(args.bundle)
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(bundle, flops, peak, Path(tmp), args.threads, args.rounds)
    meta = {"bundle": bundle.name, "latency": args.latency, "cpu": cpu_name(), "threads": args.threads,
            "rounds": args.rounds, "flops": flops, "peak": peak}
    print(write_report(args.out, "encoder_steps", {"meta": meta, "rows": rows}, report(rows, meta)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
