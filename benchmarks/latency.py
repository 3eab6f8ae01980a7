"""Latency of the runtime against the PyTorch reference (the same weights, run the way the reference code
runs them: eager modules, KV-cached greedy decoding), per stage, with peak memory and the memory-bandwidth
limit of LLM decoding on this machine.

    python -m benchmarks.latency --shapes tiny --out results/latency-tiny
    python -m benchmarks.latency --shapes qwen2.5-0.5b --llm-types F16,Q8_0,Q4_K_M --out results/latency-0.5b
    python -m benchmarks.latency --bundle B --out results/latency-B            # runtime only

Each path runs in its own process (so its peak RSS is its own) over the same clip: warm-up, then repeated
windows; p50 / p95 per stage. Decoding generates a fixed number of tokens (eos ignored) on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

STAGES = ("decode", "face", "preprocess", "vision", "audio", "fusion", "llm_prefill", "llm_decode_per_token", "end_to_end")


def percentiles(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {k: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95)), "n": len(v)}
            for k, v in samples.items() if v}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike getrusage's ru_maxrss it starts afresh at exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_bandwidth_gbs(threads: int, size_mb: int = 1024, repeats: int = 5) -> float:
    """Streaming read of a buffer far larger than the caches, with as many threads as decoding uses: the
    bound on weight-streaming LLM decode. (numpy's reductions release the GIL, so the threads run at once.)"""
    from concurrent.futures import ThreadPoolExecutor

    buf = np.ones(size_mb * (1 << 20) // 8, np.float64)
    parts = np.array_split(buf, max(threads, 1))
    best = 0.0
    with ThreadPoolExecutor(max(threads, 1)) as pool:
        list(pool.map(np.sum, parts))  # touch every page first
        for _ in range(repeats):
            t = time.perf_counter()
            list(pool.map(np.sum, parts))
            best = max(best, buf.nbytes / (time.perf_counter() - t) / 1e9)
    return best


# --- the two paths, each run in a worker process ------------------------------------------------------

def _encoder_inputs(clip_path: str, prep, watch):
    """Decode, then the runtime's one encode path up to the encoders (faces cropped when the bundle says so)."""
    from runtime.encode import encoder_inputs
    from runtime.media import read_clip_for

    clip = read_clip_for(clip_path, prep)
    watch.lap("decode")
    return encoder_inputs(clip.frames, clip.waveform, prep, watch=watch)


def _record(timings: dict, watch, extra: dict) -> None:
    for stage, ms in {**watch.ms, **extra, "end_to_end": watch.total_ms()}.items():
        if stage in timings:
            timings[stage].append(ms)


def run_runtime(spec: dict) -> dict:
    from runtime.answer import prompt_pieces
    from runtime.encode import encode
    from runtime.pipeline import Pipeline, RuntimeOptions
    from runtime.task import TASKS
    from runtime.timing import Stopwatch

    pipeline = Pipeline(spec["bundle"], RuntimeOptions(threads=spec["threads"], llm_variant=spec.get("llm_variant", ""),
                                                       encoder_variant="fp32", backend=spec["backend"],
                                                       n_ctx=1024, verify_hashes=False))
    prep, prompt = pipeline.manifest.preprocessing, pipeline.manifest.prompt
    timings = {s: [] for s in STAGES}
    for i in range(spec["warmup"] + spec["repeats"]):
        watch = Stopwatch()
        fused = encode(pipeline.encoders, _encoder_inputs(spec["clip"], prep, watch), watch).fused
        pipeline.llm.reset()
        logits = pipeline.llm.feed(prompt_pieces(pipeline.llm, prompt, fused, spec["subtitle"], TASKS["labels"].question))
        watch.lap("llm_prefill")
        for _ in range(spec["tokens"]):
            logits = pipeline.llm.feed([[int(np.argmax(logits))]])
        per_token = watch.lap("llm_decode") / spec["tokens"]
        if i >= spec["warmup"]:
            _record(timings, watch, {"llm_decode_per_token": per_token})
    files = pipeline.manifest.files
    roles = ("vision", "audio", "fusion", "llm" if not spec.get("llm_variant") else f"llm@{spec['llm_variant']}")
    return {"timings": timings, "peak_rss_mb": peak_rss_mb(), "model_bytes": sum(files[r].bytes for r in roles),
            "llm_bytes": files[roles[-1]].bytes, "providers": pipeline.encoders.providers}


def run_reference(spec: dict) -> dict:
    import torch

    from runtime.timing import Stopwatch
    from train.checkpoint import load_checkpoint
    from train.model import decode_step

    torch.set_num_threads(spec["threads"] or os.cpu_count())
    model = load_checkpoint(spec["checkpoint"]).eval()
    prep = model.cfg.preprocessing
    timings = {s: [] for s in STAGES}
    with torch.no_grad():
        for i in range(spec["warmup"] + spec["repeats"]):
            watch = Stopwatch()
            inputs = _encoder_inputs(spec["clip"], prep, watch)
            face = model.vision(torch.from_numpy(inputs.pixels))
            watch.lap("vision")
            audio = model.audio(torch.from_numpy(inputs.clips))
            watch.lap("audio")
            fused = model.fusion(face[None], audio[None])[0]
            watch.lap("fusion")
            embeds = model.embed(model.prompt_ids(spec["subtitle"], bos=model.cfg.inference_bos), fused)[None]
            out = model.llm(inputs_embeds=embeds, use_cache=True)
            watch.lap("llm_prefill")
            for _ in range(spec["tokens"]):
                next_id = out.logits[:, -1].argmax(-1, keepdim=True)
                out = decode_step(model.llm, out, next_id)
            per_token = watch.lap("llm_decode") / spec["tokens"]
            if i >= spec["warmup"]:
                _record(timings, watch, {"llm_decode_per_token": per_token})
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"timings": timings, "peak_rss_mb": peak_rss_mb(), "model_bytes": nbytes}


def _worker(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    result = run_reference(spec) if spec["path"] == "reference" else run_runtime(spec)
    print(json.dumps(result))
    return 0


def _spawn(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.latency", "--worker", json.dumps(spec)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{spec['path']} worker failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- building the weights, running, reporting -----------------------------------------------------

def prepare(shapes: str | None, checkpoint: str | None, workdir: Path, llm_types: list[str]) -> tuple[str | None, str]:
    """→ (checkpoint for the reference, bundle for the runtime), the same weights on both sides."""
    from export.bundle import export_bundle
    from quant.gguf import quantize_gguf
    from train.checkpoint import load_checkpoint, save_checkpoint
    from train.config import full_size, tiny
    from train.model import AffectGPT

    random_weights = not checkpoint  # full-size shapes: random weights, latency does not depend on them
    if checkpoint:
        model = load_checkpoint(checkpoint)
    else:
        model = AffectGPT.build(tiny() if shapes == "tiny" else full_size(shapes))
        checkpoint = str(workdir / "checkpoint")
        save_checkpoint(model, checkpoint)
    bundle = workdir / "bundle"
    export_bundle(model, bundle, "f16", inplace=True, random_weights=random_weights)
    del model
    quantized = [t for t in llm_types if t.upper() not in ("F16",)]
    if quantized:
        quantize_gguf(bundle, quantized)
    return checkpoint, str(bundle)


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    versions = {}
    for dist in ("affectgpt-edge", "torch", "onnxruntime", "llama-cpp-python", "transformers"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "versions": versions}


def report(results: dict, out: Path, meta: dict) -> str:
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Latency — {meta['shapes']} on {meta['machine']['cpu']} ({meta['machine']['cores']} cores, "
             f"{meta['threads']} threads), {meta['tokens']} generated tokens, {meta['repeats']} windows", "",
             "| path | " + " | ".join(f"{s} p50 / p95 ms" for s in STAGES) + " | peak RSS MB | model MB |",
             "|---|" + "---|" * (len(STAGES) + 2)]
    for name, r in results.items():
        cells = [f"{r['stats'][s]['p50']:.1f} / {r['stats'][s]['p95']:.1f}" if s in r["stats"] else "" for s in STAGES]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['peak_rss_mb']:.0f} | {r['model_bytes'] / 1e6:.1f} |")
    lines.append("")
    ref = results.get("pytorch-reference")
    for name, r in results.items():
        if name == "pytorch-reference":
            continue
        if ref:
            e2e = ref["stats"]["end_to_end"]["p50"] / r["stats"]["end_to_end"]["p50"]
            rss = r["peak_rss_mb"] / ref["peak_rss_mb"]
            lines.append(f"- **{name}**: end to end {e2e:.2f}× faster than the PyTorch reference; peak RSS "
                         f"{rss:.2f}× the reference's")
        if "roofline" in r:
            rf = r["roofline"]
            lines.append(f"- **{name}** decode {rf['tokens_per_s']:.1f} tok/s = {100 * rf['fraction']:.0f} % of "
                         f"the bandwidth limit ({meta['bandwidth_gbs']:.1f} GB/s ÷ {rf['llm_mb']:.1f} MB = "
                         f"{rf['limit_tokens_per_s']:.1f} tok/s)")
    text = "\n".join(lines)
    (out / "latency.md").write_text(text + "\n")
    (out / "latency.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    _chart(results, out / "latency.png", meta)
    return text


def _chart(results: dict, path: Path, meta: dict) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    parts = ("decode", "face", "vision", "audio", "fusion", "llm_prefill", "llm_decode")
    names = list(results)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.6 * len(names)))
    left = np.zeros(len(names))
    for part in parts:
        if part == "llm_decode":
            values = np.array([results[n]["stats"]["llm_decode_per_token"]["p50"] * meta["tokens"] for n in names])
        else:
            values = np.array([results[n]["stats"].get(part, {}).get("p50", 0.0) for n in names])
        ax.barh(names, values, left=left, label=part)
        left += values
    ax.set_xlabel("ms per window (p50)")
    ax.set_title(f"{meta['shapes']}: per-stage latency, {meta['threads']} threads")
    ax.legend(loc="lower right", fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        return _worker(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--shapes", choices=("tiny", "qwen2.5-0.5b", "qwen2.5-1.5b", "affectgpt-7b"))
    src.add_argument("--checkpoint")
    src.add_argument("--bundle", help="runtime only (a bundle holds no PyTorch weights)")
    ap.add_argument("--llm-types", default="F16", help="GGUF types for the runtime, e.g. F16,Q8_0,Q4_K_M")
    ap.add_argument("--backends", default="ort-cpu", help="comma-separated encoder backends")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--tokens", type=int, default=20, help="generated tokens per window (eos ignored)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--subtitle", default="I can't believe you did that again.")
    ap.add_argument("--clip", help="media file (default: a synthetic 4 s talking-face clip)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from tqdm import tqdm

    workdir = Path(tempfile.mkdtemp(prefix="affectgpt-latency-"))
    clip = args.clip
    if clip is None:
        from train.synth import write_clip

        clip = str(write_clip(workdir / "clip.mp4", seconds=4.0, size=(320, 240), seed=1))
    llm_types = [t.strip().upper() for t in args.llm_types.split(",") if t.strip()]
    if args.bundle:
        checkpoint, bundle = None, args.bundle
    else:
        print("building the weights and the bundle ...", file=sys.stderr)
        checkpoint, bundle = prepare(args.shapes, args.checkpoint, workdir, llm_types)
    base = {"clip": clip, "threads": args.threads, "tokens": args.tokens, "warmup": args.warmup,
            "repeats": args.repeats, "subtitle": args.subtitle}
    runs = {}
    if checkpoint:
        runs["pytorch-reference"] = {**base, "path": "reference", "checkpoint": checkpoint}
    for backend in [b for b in args.backends.split(",") if b]:
        for t in llm_types:
            variant = "" if t == "F16" else t.lower()
            runs[f"runtime {backend} {t}"] = {**base, "path": "runtime", "bundle": bundle, "backend": backend,
                                              "llm_variant": variant}
    bandwidth = memory_bandwidth_gbs(args.threads)
    results = {}
    for name, spec in tqdm(runs.items(), desc="paths", file=sys.stderr):
        r = _spawn(spec)
        r["stats"] = percentiles(r.pop("timings"))
        if "llm_bytes" in r:
            tps = 1e3 / r["stats"]["llm_decode_per_token"]["p50"]
            limit = bandwidth * 1e9 / r["llm_bytes"]
            r["roofline"] = {"tokens_per_s": tps, "limit_tokens_per_s": limit, "fraction": tps / limit,
                             "llm_mb": r["llm_bytes"] / 1e6}
        results[name] = r
    meta = {"shapes": args.shapes or args.checkpoint or args.bundle, "threads": args.threads, "tokens": args.tokens,
            "repeats": args.repeats, "bandwidth_gbs": bandwidth, "machine": machine()}
    print(report(results, Path(args.out), meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
