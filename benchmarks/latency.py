"""Latency of the runtime against the PyTorch reference (the same weights, run the way the reference code
runs them: eager modules, KV-cached greedy decoding), per stage, with peak memory and the memory-bandwidth
limit of LLM decoding on this machine.

    python -m benchmarks.latency --shapes tiny --out results/latency-tiny
    python -m benchmarks.latency --shapes qwen2.5-0.5b --llm-types F16,Q8_0,Q4_K_M --encoders fp32,int8-dynamic --out R
    python -m benchmarks.latency --bundle B --out results/latency-B            # runtime only

Each path runs in its own process (so its peak RSS is its own) over the same clip: warm-up, then repeated
windows; p50 / p95 per stage. Decoding generates a fixed number of tokens (eos ignored) on both sides. The
references are PyTorch fp32 eager (`pytorch-reference`) and, on a CPU with bf16 units or a GPU, PyTorch with
bf16 autocast (`pytorch-bf16`, fp16 on CUDA). The runtime's prefill is measured cold (the whole prompt) and
warm (the static start of the prompt kept in KV, as the stream runs). Every encoder variant's features on the
clip (decoded frames, espeak-ng speech when installed) are compared with fp32's (cosine); GFLOP/s are the
encoders' counted FLOPs over their time, against the fp32 and INT8 GEMM peaks measured here.
"""

from __future__ import annotations

import argparse
import contextlib
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

from benchmarks.errors import BenchmarkError
from benchmarks.metrics import cosine
from benchmarks.report import cpu_id, cpu_name, write_report
from runtime.errors import run_cli

STAGES = ("decode", "face", "preprocess", "vision", "audio", "fusion", "llm_prefill", "llm_prefill_warm", "llm_decode_per_token", "end_to_end")


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
    """One window's stage times; end to end is the watch's total unless `extra` gives it."""
    for stage, ms in {**watch.ms, "end_to_end": watch.total_ms(), **extra}.items():
        if stage in timings:
            timings[stage].append(ms)


def run_runtime(spec: dict) -> dict:
    from runtime.answer import prompt_pieces
    from runtime.encode import encode
    from runtime.manifest import variant_role
    from runtime.pipeline import Pipeline, RuntimeOptions
    from runtime.task import TASKS
    from runtime.timing import Stopwatch

    encoders = spec.get("encoders", "fp32")
    pipeline = Pipeline(spec["bundle"], RuntimeOptions(threads=spec["threads"], llm_variant=spec.get("llm_variant", ""),
                                                       encoder_variant=encoders, backend=spec["backend"],
                                                       n_ctx=1024, verify_hashes=False))
    prep, prompt, llm = pipeline.manifest.preprocessing, pipeline.manifest.prompt, pipeline.llm
    timings = {s: [] for s in STAGES}
    for i in range(spec["warmup"] + spec["repeats"]):
        watch = Stopwatch()
        features = encode(pipeline.encoders, _encoder_inputs(spec["clip"], prep, watch), watch)
        pieces = prompt_pieces(llm, prompt, features.fused, spec["subtitle"], TASKS["labels"].question)
        logits = llm.prefill(pieces, keep_prefix=False)[0]  # cold: the whole prompt in one batch
        watch.lap("llm_prefill")
        for _ in range(spec["tokens"]):
            logits = llm.eval_chunks([[int(np.argmax(logits))]])[0]
        per_token = watch.lap("llm_decode") / spec["tokens"]
        window_ms = watch.total_ms()  # the window ends here: what follows only measures the warm prefill
        llm.prefill(pieces)  # the static start of the prompt into KV, as the stream keeps it
        warm = Stopwatch()  # warm prefill: the rest of the prompt only (not part of end_to_end)
        llm.prefill(pieces)
        if i >= spec["warmup"]:
            _record(timings, watch, {"llm_decode_per_token": per_token, "llm_prefill_warm": warm.total_ms(),
                                     "end_to_end": window_ms})
    if spec.get("features_out"):
        np.savez(spec["features_out"], face=features.face, audio=features.audio, fused=features.fused)
    files = pipeline.manifest.files
    roles = [variant_role(b, encoders) for b in ("vision", "audio", "fusion")]
    roles.append(variant_role("llm", spec.get("llm_variant")))
    return {"timings": timings, "peak_rss_mb": peak_rss_mb(), "model_bytes": sum(files[r].bytes for r in roles),
            "encoder_bytes": sum(files[r].bytes for r in roles[:3]), "llm_bytes": files[roles[-1]].bytes,
            "prompt_positions": sum(len(piece) for piece in pieces),
            "providers": pipeline.encoders.providers}


def run_reference(spec: dict) -> dict:
    import torch

    from runtime.timing import Stopwatch
    from train.checkpoint import load_checkpoint
    from train.model import decode_step

    torch.set_num_threads(spec["threads"] or os.cpu_count())
    model = load_checkpoint(spec["checkpoint"]).eval()
    prep = model.cfg.preprocessing
    timings = {s: [] for s in STAGES}
    low = spec.get("autocast")  # "bf16" (CPU) / "fp16" (CUDA): the one line a PyTorch user would flip
    precision = torch.autocast("cpu", dtype=torch.bfloat16) if low == "bf16" else contextlib.nullcontext()
    flops = {}
    if spec.get("count_flops"):
        from torch.utils.flop_counter import FlopCounterMode

        inputs = _encoder_inputs(spec["clip"], prep, Stopwatch())
        with torch.no_grad():
            for name, module, x in (("vision", model.vision, inputs.pixels), ("audio", model.audio, inputs.clips)):
                with FlopCounterMode(display=False) as counter:
                    module(torch.from_numpy(x))
                flops[name] = counter.get_total_flops()
    with torch.no_grad(), precision:
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
    return {"timings": timings, "peak_rss_mb": peak_rss_mb(), "model_bytes": nbytes, "flops": flops}


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

def prepare(shapes: str | None, checkpoint: str | None, workdir: Path, llm_types: list[str], encoders: list[str],
            clip: str) -> tuple[str | None, str]:
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
    variants = [v for v in encoders if v != "fp32"]
    if variants:
        from quant.onnx import quantize_onnx

        calibration = workdir / "calibration"
        calibration.mkdir(exist_ok=True)
        calibration_clips(calibration, fallback=clip)
        quantize_onnx(bundle, variants, str(calibration))
    return checkpoint, str(bundle)


def check_memory(shapes: str) -> None:
    """The references hold the whole model in fp32 (and the export a second copy while it merges): refuse, in one
    line, a size this machine cannot hold rather than let it swap or be killed."""
    from export.lazy_llm import meta_shapes
    from train.config import full_size
    from transformers import Qwen2Config

    cfg = full_size(shapes)
    config = Qwen2Config(vocab_size=cfg.llm_vocab_size, **cfg.llm)
    need = 4 * sum(int(np.prod(s)) for s in meta_shapes(config).values()) * 2  # fp32, twice
    available = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            available = int(line.split()[1]) * 1024
    if available and need > available:
        raise BenchmarkError(f"--shapes {shapes} needs about {need / 1e9:.0f} GB for the PyTorch references, this machine "
                             f"has {available / 1e9:.0f} GB available: python -m benchmarks.paper_size runs the runtime at "
                             "this size without the references")


# Calibration speaks other sentences than the measured clip: a static variant is never scored on what set its ranges.
CALIBRATION_SENTENCES = (
    "The traffic was terrible this morning and I nearly missed the train.",
    "We finally got the keys to the new flat, I still cannot believe it.",
    "Please keep your voice down, the baby has only just fallen asleep.",
    "I told you three times already, the form goes in the blue box.",
)


def _speech(wav: Path, sentence: str, samples: int, offset: int) -> np.ndarray | None:
    """espeak-ng's `sentence` at 16 kHz, placed at `offset` in `samples` of silence; None without espeak-ng."""
    try:
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), sentence], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    from runtime.media import read_audio

    voice, _ = read_audio(wav, 16000)
    waveform = np.zeros(samples, np.float32)
    n = min(voice.size, samples - offset)
    waveform[offset:offset + n] = voice[:n]
    return waveform


def calibration_clips(folder: Path, fallback: str | None = None) -> list[Path]:
    """Talking-face clips of CALIBRATION_SENTENCES in `folder`; without espeak-ng, a copy of `fallback`."""
    from train.synth import write_clip

    clips = []
    for i, sentence in enumerate(CALIBRATION_SENTENCES):
        waveform = _speech(folder / f"calibration-{i}.wav", sentence, 64000, 2000)
        if waveform is None:
            break
        (folder / f"calibration-{i}.wav").unlink()
        clips.append(Path(write_clip(folder / f"calibration-{i}.mp4", seconds=4.0, size=(320, 240), seed=10 + i,
                                     waveform=waveform)))
    if not clips and fallback:
        clips.append(folder / Path(fallback).name)
        clips[0].write_bytes(Path(fallback).read_bytes())
    return clips


def speech_clip(workdir: Path) -> str:
    """A 4 s talking-face clip whose audio is real speech (espeak-ng) when it is installed, else a voiced tone."""
    from train.synth import write_clip

    waveform = _speech(workdir / "speech.wav", "Honestly, I did not expect you to come back so soon.", 64000, 4000)
    return str(write_clip(workdir / "clip.mp4", seconds=4.0, size=(320, 240), seed=1, waveform=waveform))


def gemm_peaks(threads: int, repeats: int = 5) -> dict:
    """Measured GEMM peaks of this machine, the way the encoders run: ONNX Runtime on one 1024 → 4096 layer over
    2048 rows, fp32 (GFLOP/s) and dynamically quantized to INT8 exactly as `quant onnx` does (GOP/s). Best of
    `repeats` runs of 10."""
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return {}
    from quant.onnx import convert

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((1024, 4096)).astype(np.float32) * 0.02, "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "w"], ["y"])], "gemm",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2048, 1024])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2048, 4096])], [weight])
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "gemm.onnx", Path(tmp) / "gemm.int8.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(fp32))
        convert(fp32, int8, "int8-dynamic")
        x = {"a": rng.standard_normal((2048, 1024)).astype(np.float32)}
        for key, path in (("fp32_gflops", fp32), ("int8_gops", int8)):
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            session.run(None, x)
            best = 0.0
            for _ in range(repeats):
                t = time.perf_counter()
                for _ in range(10):
                    session.run(None, x)
                best = max(best, 10 * 2 * 2048 * 1024 * 4096 / (time.perf_counter() - t) / 1e9)
            out[key] = best
    return out


def machine() -> dict:
    from quant.cpu import cpu as cpu_info

    info = cpu_info()
    versions = {}
    for dist in ("affectgpt-edge", "torch", "onnxruntime", "llama-cpp-python", "transformers"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu_name(), "cpu_id": cpu_id(), "features": info["features"], "cores": os.cpu_count(), "python": platform.python_version(),
            "versions": versions}


def report(results: dict, out: Path, meta: dict) -> str:
    out.mkdir(parents=True, exist_ok=True)
    m = meta["machine"]
    lines = [f"# Latency — {meta['shapes']} on {m['cpu']} ({m['cores']} cores, {meta['threads']} threads; "
             f"{', '.join(m.get('features', [])) or 'no SIMD features read'}), {meta['tokens']} generated tokens, "
             f"{meta['repeats']} windows", "",
             "| path | " + " | ".join(STAGES[:-1]) + " | end to end p50 / p95 | peak RSS MB | model MB |",
             "|---|" + "---|" * (len(STAGES) + 2)]
    for name, r in results.items():
        st = r["stats"]
        cells = [f"{st[s]['p50']:.1f}" if s in st else "" for s in STAGES[:-1]]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {st['end_to_end']['p50']:.0f} / {st['end_to_end']['p95']:.0f}"
                     f" | {r['peak_rss_mb']:.0f} | {r['model_bytes'] / 1e6:.1f} |")
    lines += ["", "All times are p50 ms per window. " + ("Prefill warm: the static start of the prompt kept in KV, as the "
              "stream runs; end to end counts the cold prefill." if any("llm_prefill_warm" in r["stats"] for r in results.values()) else "")]
    refs = {k: results[k] for k in ("pytorch-reference", "pytorch-bf16") if k in results}
    for name, r in results.items():
        if name in refs:
            continue
        ratios = [f"{ref['stats']['end_to_end']['p50'] / r['stats']['end_to_end']['p50']:.2f}× faster than {k}, peak RSS "
                  f"{r['peak_rss_mb'] / ref['peak_rss_mb']:.2f}× its" for k, ref in refs.items()]
        if ratios:
            lines.append(f"- **{name}**: end to end " + "; ".join(ratios))
        if "roofline" in r:
            rf = r["roofline"]
            lines.append(f"- **{name}** decode {rf['tokens_per_s']:.1f} tok/s = {100 * rf['fraction']:.0f} % of "
                         f"the bandwidth limit ({meta['bandwidth_gbs']:.1f} GB/s ÷ {rf['llm_mb']:.1f} MB = "
                         f"{rf['limit_tokens_per_s']:.1f} tok/s)")
    ladder = meta.get("encoder_ladder")
    if ladder:
        peaks = meta.get("peaks", {})
        lines += ["", f"Encoder ladder (p50 over every path's windows; the clip's decoded frames and speech; measured peaks: fp32 GEMM "
                      f"{_number(peaks.get('fp32_gflops'))} GFLOP/s, INT8 GEMM {_number(peaks.get('int8_gops'))} GOP/s)", "",
                  "| encoders | vision ms | audio ms | cos vision | cos audio | cos fused | MB | vision GFLOP/s (of peak) | audio GFLOP/s (of peak) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for row in ladder:
            lines.append(f"| {row['encoders']} | {row['vision_ms']:.0f} | {row['audio_ms']:.0f} | {row['cos_vision']:.5f} | "
                         f"{row['cos_audio']:.5f} | {row['cos_fused']:.5f} | {row['mb']:.0f} | "
                         f"{_of_peak(row['vision_gflops'], row['vision_of_peak'])} | "
                         f"{_of_peak(row['audio_gflops'], row['audio_of_peak'])} |")
    text = "\n".join(lines)
    write_report(out, "latency", {"meta": meta, "results": results}, text)
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
    ap.add_argument("--encoders", default="fp32,int8-dynamic",
                    help="encoder variants for the runtime, e.g. fp32,int8-dynamic,int8-static (default fp32,int8-dynamic)")
    ap.add_argument("--backends", default="ort-cpu", help="comma-separated encoder backends")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--tokens", type=int, default=20, help="generated tokens per window (eos ignored)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--subtitle", default="I can't believe you did that again.")
    ap.add_argument("--clip", help="media file (default: a 4 s talking-face clip with espeak-ng speech)")
    ap.add_argument("--no-bf16", action="store_true", help="leave out the pytorch-bf16 reference")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.shapes and args.shapes != "tiny":
        check_memory(args.shapes)
    # the weights, bundle and features built for the run: gigabytes at the paper's shapes, gone when it ends
    with tempfile.TemporaryDirectory(prefix="affectgpt-latency-") as tmp:
        return measure(args, Path(tmp))


def measure(args: argparse.Namespace, workdir: Path) -> int:
    """Build what the paths need in WORKDIR, run every path in its own process, print and write the report."""
    from tqdm import tqdm

    from quant.cpu import has_bf16

    clip = args.clip or speech_clip(workdir)
    llm_types = [t.strip().upper() for t in args.llm_types.split(",") if t.strip()]
    encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
    if args.bundle:
        checkpoint, bundle = None, args.bundle
    else:
        print("building the weights and the bundle ...", file=sys.stderr)
        checkpoint, bundle = prepare(args.shapes, args.checkpoint, workdir, llm_types, encoders, clip)
    base = {"clip": clip, "threads": args.threads, "tokens": args.tokens, "warmup": args.warmup,
            "repeats": args.repeats, "subtitle": args.subtitle}
    runs = {}
    if checkpoint:
        runs["pytorch-reference"] = {**base, "path": "reference", "checkpoint": checkpoint, "count_flops": True}
        if has_bf16() and not args.no_bf16:
            runs["pytorch-bf16"] = {**base, "path": "reference", "checkpoint": checkpoint, "autocast": "bf16"}
    features = {}
    for backend in [b for b in args.backends.split(",") if b]:
        for enc in encoders:
            for t in llm_types:
                name = f"runtime {backend} {enc} {t}"
                features[name] = str(workdir / f"features-{len(features)}.npz")
                runs[name] = {**base, "path": "runtime", "bundle": bundle, "backend": backend, "encoders": enc,
                              "llm_variant": "" if t == "F16" else t.lower(), "features_out": features[name]}
    bandwidth = memory_bandwidth_gbs(args.threads)
    peaks = gemm_peaks(args.threads)
    results = {}
    for name, spec in tqdm(runs.items(), desc="paths", file=sys.stderr):
        r = _spawn(spec)
        r["encoder_samples"] = {k: r["timings"][k] for k in ("vision", "audio")}
        r["stats"] = percentiles(r.pop("timings"))
        if "llm_bytes" in r:
            tps = 1e3 / r["stats"]["llm_decode_per_token"]["p50"]
            limit = bandwidth * 1e9 / r["llm_bytes"]
            r["roofline"] = {"tokens_per_s": tps, "limit_tokens_per_s": limit, "fraction": tps / limit,
                             "llm_mb": r["llm_bytes"] / 1e6}
        results[name] = r
    meta = {"shapes": args.shapes or args.checkpoint or args.bundle, "threads": args.threads, "tokens": args.tokens,
            "repeats": args.repeats, "bandwidth_gbs": bandwidth, "peaks": peaks, "machine": machine(),
            "encoder_ladder": encoder_ladder(results, features, encoders, peaks)}
    print(report(results, Path(args.out), meta))
    return 0


def encoder_ladder(results: dict, features: dict, encoders: list[str], peaks: dict) -> list[dict]:
    """Per encoder variant: time (p50 over the windows of every runtime path that runs it: the same graphs, so a
    slower spell of a shared host during one path does not decide), cosine of its features (first path) to fp32's,
    MB, GFLOP/s."""
    flops = results.get("pytorch-reference", {}).get("flops", {})
    paths = {}
    for name in features:
        paths.setdefault(name.split()[2], []).append(name)  # "runtime BACKEND ENCODERS LLM"
    if "fp32" not in paths:
        return []
    ref = np.load(features[paths["fp32"][0]])
    rows = []
    for enc in encoders:
        if enc not in paths:
            continue
        name = paths[enc][0]
        got = np.load(features[name])
        ms = {k: float(np.median([t for n in paths[enc] for t in results[n]["encoder_samples"][k]]))
              for k in ("vision", "audio")}
        peak = peaks.get("int8_gops" if enc.startswith("int8") else "fp32_gflops")
        # FLOPs are counted on the PyTorch reference: a run without it (a bundle alone) has none, so None, not NaN
        vision_gflops = flops["vision"] / ms["vision"] / 1e6 if "vision" in flops else None
        audio_gflops = flops["audio"] / ms["audio"] / 1e6 if "audio" in flops else None
        rows.append({"encoders": enc, "vision_ms": ms["vision"], "audio_ms": ms["audio"],
                     "cos_vision": cosine(got["face"], ref["face"]), "cos_audio": cosine(got["audio"], ref["audio"]),
                     "cos_fused": cosine(got["fused"], ref["fused"]), "mb": results[name]["encoder_bytes"] / 1e6,
                     "vision_gflops": vision_gflops, "audio_gflops": audio_gflops,
                     "vision_of_peak": vision_gflops / peak if vision_gflops and peak else None,
                     "audio_of_peak": audio_gflops / peak if audio_gflops and peak else None})
    return rows


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def _of_peak(gflops: float | None, fraction: float | None) -> str:
    """A ladder cell: "412 (69 %)", or "–" where the run counted no FLOPs or measured no peak."""
    if gflops is None:
        return "–"
    return f"{gflops:.0f}" + (f" ({100 * fraction:.0f} %)" if fraction is not None else "")


if __name__ == "__main__":
    sys.exit(run_cli(main))
