"""Where an encoder's window goes, operator type by operator type, under ONNX Runtime's own profiler.

    python -m benchmarks.encoder_ops --bundle B --variant int8-static --out results/encoder-ops

A bundle's vision and audio graphs of one variant, run as the runtime runs them (its batch of two, or `--batch`;
the window's eight frames and eight clips at the bundle's sizes; the given threads), one warm-up window and then
`--windows` profiled. What an operator does costs the same whatever the pixels and samples hold, so the inputs are
drawn at random. The table says which kernels stand between an encoder and the INT8 peak the latency benchmark measures:
on a CPU whose INT8 matrix products are fast, what is left in fp32 (attention, activations, normalisation) is
what the window waits on.
"""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.errors import BenchmarkError
from benchmarks.report import cpu_name, write_report
from runtime.errors import run_cli

SHOWN = 10  # operator types listed per graph; the rest are summed into "other"


def window_inputs(manifest, role: str, rng: np.random.Generator) -> np.ndarray:
    p = manifest.preprocessing
    if role == "vision":
        return rng.standard_normal((p.num_frames, 3, p.image_size, p.image_size), dtype=np.float32)
    return 0.1 * rng.standard_normal((p.num_clips, int(p.clip_seconds * p.sample_rate)), dtype=np.float32)


def profile_graph(path: Path, x: np.ndarray, threads: int, batch: int, windows: int, scratch: Path) -> dict:
    """→ {"window_ms": [...], "ops": {op type: ms per window}} of `windows` profiled windows after one warm-up."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.enable_profiling = True
    options.profile_file_prefix = str(scratch / path.stem)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for _ in range(windows + 1):
        for i in range(0, len(x), batch):
            session.run(None, {name: x[i:i + batch]})
    events = json.loads(Path(session.end_profiling()).read_text())
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    per_window = -(-len(x) // batch)
    if len(runs) != per_window * (windows + 1):
        raise BenchmarkError(f"{path.name}: the profiler recorded {len(runs)} runs, not {per_window * (windows + 1)}")
    measured_from = runs[per_window]["ts"]  # the first window warms up
    ops = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and e["ts"] >= measured_from:
            ops[e["args"]["op_name"]] += e["dur"] / 1e3 / windows
    window_ms = [sum(r["dur"] for r in runs[w * per_window:(w + 1) * per_window]) / 1e3 for w in range(1, windows + 1)]
    return {"window_ms": window_ms, "ops": dict(ops.most_common())}


def table(role: str, result: dict) -> list[str]:
    ops = list(result["ops"].items())
    total = sum(ms for _, ms in ops) or 1.0
    shown, rest = ops[:SHOWN], sum(ms for _, ms in ops[SHOWN:])
    lines = [f"| {role}: operator | ms per window | share |", "|---|---|---|"]
    lines += [f"| {op} | {ms:.1f} | {100 * ms / total:.1f} % |" for op, ms in shown]
    if rest:
        lines.append(f"| other ({len(ops) - SHOWN} types) | {rest:.1f} | {100 * rest / total:.1f} % |")
    lines.append(f"| **window, p50** | **{np.median(result['window_ms']):.0f}** | kernels {total:.0f} ms |")
    return lines


def main(argv=None) -> int:
    from runtime.encoders import Encoders
    from runtime.manifest import AUDIO, VISION, confined, read_manifest, variant_role

    ap = argparse.ArgumentParser(prog="python -m benchmarks.encoder_ops", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--variant", default="fp32", help="encoder variant: fp32, int8-dynamic, int8-static ...")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--windows", type=int, default=3, help="profiled windows, after one warm-up")
    ap.add_argument("--batch", type=int, default=None,
                    help="frames or clips per run (default: the runtime's, Encoders(batch=...))")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.windows < 1 or args.threads < 1 or (args.batch is not None and args.batch < 1):
        raise BenchmarkError("--windows, --threads and --batch must be at least 1")

    bundle = Path(args.bundle)
    manifest = read_manifest(bundle)
    # by default the kernels see the shapes the runtime runs
    batch = args.batch or inspect.signature(Encoders).parameters["batch"].default
    rng = np.random.default_rng(0)
    results = {}
    with tempfile.TemporaryDirectory(prefix="affectgpt-ops-") as scratch:
        for role in (VISION, AUDIO):
            key = variant_role(role, args.variant)
            if key not in manifest.files:
                raise BenchmarkError(f"the bundle has no {key} graph (variants: quant onnx --variants ...)")
            path = confined(bundle, manifest.files[key].path, key)
            print(f"profiling {key} ...", file=sys.stderr)
            results[role] = profile_graph(path, window_inputs(manifest, role, rng), args.threads, batch,
                                          args.windows, Path(scratch))
    title = (f"# Encoder time by operator — {args.variant}, {manifest.name}, {cpu_name()}, {args.threads} threads, "
             f"batch {batch}, {args.windows} windows")
    lines = [title, ""]
    for role, result in results.items():
        lines += table(role, result) + [""]
    text = "\n".join(lines)
    write_report(Path(args.out), "encoder_ops", {"meta": {"bundle": str(bundle), "variant": args.variant,
                                                          "threads": args.threads, "batch": batch,
                                                          "windows": args.windows, "cpu": cpu_name()},
                                                 "results": results}, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
