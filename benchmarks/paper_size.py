"""The paper's full size on one machine: CLIP ViT-L/14 + HuBERT-large + a Qwen2.5-7B-shaped LLM (random weights),
exported without the LLM ever in memory, quantised, and answering windows on this CPU — then what the same bytes and
FLOPs would take on a Jetson (a projection, not a measurement).

    python -m benchmarks.paper_size --out results/paper7b            # about an hour on two cores; 25 GB of disk

Stages, each a command of the project (printed as it runs) and skipped when `--workdir` already holds its result:
`export --shapes` (time, peak anonymous memory), `quant gguf` (Q4_K_M), `quant onnx` (INT8 encoders), then
`benchmarks.latency --bundle` (per-stage window time, decode against the memory-bandwidth limit). The PyTorch
references do not run at this size: fp32 weights alone would need about 33 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.errors import BenchmarkError
from benchmarks.recipe import log
from benchmarks.report import write_report
from runtime.errors import run_cli

# Published figures (NVIDIA Jetson Orin module data sheets): memory bandwidth and INT8 TOPS (sparse; dense is half).
JETSONS = {"AGX Orin 64GB": {"bandwidth_gbs": 204.8, "int8_tops_sparse": 275, "memory_gb": 64},
           "Orin Nano 8GB": {"bandwidth_gbs": 68.0, "int8_tops_sparse": 40, "memory_gb": 8}}
UTILISATION = 0.3  # assumed share of the dense INT8 peak the encoders and the prefill reach on the GPU


def run(*args: str, capture: bool = False) -> tuple[float, str]:
    """`python -m ARGS` → (seconds, its stdout's last line when captured)."""
    log("$ python -m " + shlex.join(args))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *args], stdout=subprocess.PIPE if capture else None, text=True)
    if proc.returncode != 0:
        raise BenchmarkError(f"stage failed (exit {proc.returncode}): python -m {shlex.join(args)}")
    last = proc.stdout.strip().splitlines()[-1] if capture and proc.stdout.strip() else ""
    return time.perf_counter() - start, last


def flop_counts(shapes: str, clip: str) -> dict:
    """FLOPs of one window: each encoder counted by PyTorch on its full-size module, the LLM as 2 per weight per token
    (the output layer included, the embedding lookup not)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from export.lazy_llm import meta_shapes
    from runtime.encode import encoder_inputs
    from runtime.media import read_clip_for
    from train.config import full_size
    from train.model import AffectGPT, build_parts

    cfg = full_size(shapes)
    model = AffectGPT(cfg, *build_parts(cfg, llm_on_meta=True)).eval()
    media = read_clip_for(clip, cfg.preprocessing)
    inputs = encoder_inputs(media.frames, media.waveform, cfg.preprocessing)
    out = {}
    with torch.no_grad():
        for name, module, x in (("vision", model.vision, inputs.pixels), ("audio", model.audio, inputs.clips)):
            with FlopCounterMode(display=False) as counter:
                module(torch.from_numpy(x))
            out[name] = counter.get_total_flops()
    config = model.llm.get_base_model().config
    weights = sum(int(torch.tensor(s).prod()) for n, s in meta_shapes(config).items() if n != "model.embed_tokens.weight")
    if config.tie_word_embeddings:
        weights += config.vocab_size * config.hidden_size
    out["llm_per_token"] = 2 * weights
    return out


def gguf_loading() -> str:
    from runtime.llm import amx_build

    return "the GGUF read into memory: llama.cpp runs a repacked copy on AMX" if amx_build() else "the GGUF is memory-mapped"


def projection(window: dict, flops: dict, llm_bytes: int, bandwidth_fraction: float, prompt_tokens: int,
               tokens: int) -> list[dict]:
    """Per Jetson: encoders and prefill at UTILISATION of the dense INT8 peak, decode at the bandwidth fraction
    measured here (at most all of it: llama.cpp can read faster than the numpy probe that measures the limit). A
    projection from bytes and FLOPs, not a measurement."""
    rows = []
    for name, spec in JETSONS.items():
        ops = spec["int8_tops_sparse"] / 2 * 1e12 * UTILISATION
        encoders = (flops["vision"] + flops["audio"]) / ops * 1e3
        prefill = flops["llm_per_token"] * prompt_tokens / ops * 1e3
        tps = spec["bandwidth_gbs"] * 1e9 * min(bandwidth_fraction, 1.0) / llm_bytes  # above 1: the probe ran slow
        rows.append({"device": name, "encoders_ms": encoders, "prefill_ms": prefill, "decode_tok_s": tps,
                     "window_ms": encoders + prefill + tokens / tps * 1e3,
                     "fits": window["bundle_gb"] < spec["memory_gb"] * 0.8})
    return rows


def table(r: dict) -> str:
    e, lat = r["export"], r["latency"]
    lines = [f"# The paper's size ({r['shapes']}) on {r['cpu']}, {r['threads']} threads", "",
             "| stage | time | peak memory |", "|---|---|---|",
             f"| export (encoders to ONNX, LLM F16 GGUF tensor by tensor) | {e['export_s'] / 60:.1f} min | "
             f"{e['peak_anon_mb'] / 1024:.1f} GB anonymous (ru_maxrss {e['ru_maxrss_mb'] / 1024:.1f} GB) |",
             f"| quantise LLM to Q4_K_M (llama.cpp) | {r['quant_gguf_s'] / 60:.1f} min | |",
             f"| quantise encoders to INT8 (dynamic) | {r['quant_onnx_s'] / 60:.1f} min | |", "",
             "| file | MB |", "|---|---|"]
    lines += [f"| {role} | {b / 1e6:.0f} |" for role, b in sorted(r["bundle_bytes"].items())]
    lines += ["", "| window stage (p50) | ms |", "|---|---|"]
    lines += [f"| {stage} | {ms:.0f} |" for stage, ms in lat["stages"].items()]
    lines += ["", f"Decode {lat['tokens_per_s']:.2f} tok/s = {100 * lat['bandwidth_fraction']:.0f} % of this machine's "
              f"bandwidth limit ({lat['bandwidth_gbs']:.1f} GB/s ÷ {lat['llm_mb']:.0f} MB = {lat['limit_tokens_per_s']:.2f} "
              f"tok/s); peak RSS of the window process {lat['peak_rss_mb']:.0f} MB ({gguf_loading()}).", "",
              f"Projection (not measured): encoders {r['flops']['vision'] / 1e9:.0f} + {r['flops']['audio'] / 1e9:.0f} GFLOP "
              f"and prefill {r['prompt_tokens']} × {r['flops']['llm_per_token'] / 1e9:.1f} GFLOP at "
              f"{100 * UTILISATION:.0f} % of the dense INT8 peak, decode at this machine's bandwidth fraction:", "",
              "| device | encoders ms | prefill ms | decode tok/s | window ms (20 tokens) | bundle fits in 80 % of memory |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {p['device']} | {p['encoders_ms']:.0f} | {p['prefill_ms']:.0f} | {p['decode_tok_s']:.1f} | "
              f"{p['window_ms']:.0f} | {'yes' if p['fits'] else 'no'} |" for p in r["projection"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.paper_size", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--shapes", default="affectgpt-7b")
    ap.add_argument("--workdir", help="where the bundle is built (default: OUT/work); reused when there")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3, help="windows measured after one of warm-up")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from benchmarks.latency import speech_clip
    from benchmarks.report import cpu_name

    out = Path(args.out)
    work = Path(args.workdir or out / "work")
    work.mkdir(parents=True, exist_ok=True)
    bundle, done = work / "bundle", work / "stages.json"
    stages = json.loads(done.read_text()) if done.is_file() else {}

    def save() -> None:
        done.write_text(json.dumps(stages, indent=2))

    if "export" not in stages:
        _, line = run("export", "--shapes", args.shapes, "--out", str(bundle), capture=True)
        stages["export"] = json.loads(line)
        save()
    clip = speech_clip(work)
    if "quant_gguf_s" not in stages:
        stages["quant_gguf_s"] = run("quant", "gguf", "--bundle", str(bundle), "--types", "Q4_K_M")[0]
        save()
    if "quant_onnx_s" not in stages:
        calibration = work / "calibration"
        calibration.mkdir(exist_ok=True)
        (calibration / Path(clip).name).write_bytes(Path(clip).read_bytes())
        stages["quant_onnx_s"] = run("quant", "onnx", "--bundle", str(bundle), "--variants", "int8-dynamic",
                                     "--clips", str(calibration))[0]
        save()
    latency_out = work / "latency"
    if not (latency_out / "latency.json").is_file():
        run("benchmarks.latency", "--bundle", str(bundle), "--llm-types", "Q4_K_M", "--encoders", "int8-dynamic",
            "--warmup", "1", "--repeats", str(args.repeats), "--threads", str(args.threads), "--clip", clip,
            "--out", str(latency_out))
    latency = json.loads((latency_out / "latency.json").read_text())
    (name, result), = latency["results"].items()
    stats = {k: v["p50"] for k, v in result["stats"].items()}
    roof = result["roofline"]
    flops = flop_counts(args.shapes, clip)
    manifest = json.loads((bundle / "manifest.json").read_text())
    sizes = {role: entry["bytes"] for role, entry in manifest["files"].items()}
    deployed = sum(b for role, b in sizes.items() if role in ("vision@int8-dynamic", "audio@int8-dynamic",
                                                              "fusion@int8-dynamic", "llm@q4_k_m"))
    prompt_tokens = result["prompt_positions"]
    report = {"shapes": args.shapes, "cpu": cpu_name(), "threads": args.threads, "export": stages["export"],
              "quant_gguf_s": stages["quant_gguf_s"], "quant_onnx_s": stages["quant_onnx_s"], "bundle_bytes": sizes,
              "deployed_bytes": deployed, "flops": flops, "prompt_tokens": prompt_tokens,
              "latency": {"path": name, "stages": stats, "tokens_per_s": roof["tokens_per_s"],
                          "limit_tokens_per_s": roof["limit_tokens_per_s"], "bandwidth_fraction": roof["fraction"],
                          "bandwidth_gbs": latency["meta"]["bandwidth_gbs"], "llm_mb": roof["llm_mb"],
                          "peak_rss_mb": result["peak_rss_mb"]},
              "children_ru_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    report["projection"] = projection({"bundle_gb": deployed / 1e9}, flops, result["llm_bytes"], roof["fraction"],
                                      prompt_tokens, latency["meta"]["tokens"])
    print(write_report(out, "paper_size", report, table(report)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, expected=(OSError, ValueError)))
