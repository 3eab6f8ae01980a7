"""The LLM stage of a window with the answer's fixed opening chosen token by token from the logits (plain greedy
decoding) and fed without its logits instead (as `runtime.answer` runs it), interleaved on the same windows; the
answers must be equal token for token.

    python -m benchmarks.forced_opening --out results/forced-opening                # the shipped default
    python -m benchmarks.forced_opening --bundle B --repeats 40 --out R
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from benchmarks.report import cpu_name, write_report
from runtime.errors import run_cli

DEMO = Path(__file__).resolve().parents[1] / "runtime" / "demo"


def measure(bundle: Path, samples: list[dict], repeats: int, warmup: int, threads: int | None, task_name: str) -> dict:
    from runtime.answer import answer, opening_ids, prompt_pieces
    from runtime.media import read_clip_for
    from runtime.pipeline import Pipeline, RuntimeOptions
    from runtime.sampler import generate
    from runtime.task import get_task

    pipeline = Pipeline(bundle, RuntimeOptions(threads=threads, verify_hashes=False))
    llm, prompt, task = pipeline.llm, pipeline.manifest.prompt, get_task(task_name)
    windows = [(pipeline.features(read_clip_for(bundle_file, pipeline.manifest.preprocessing)).fused, s["subtitle"])
               for bundle_file, s in samples]
    stages = {mode: {"prefill": [], "decode": [], "llm": []} for mode in ("decoded", "forced")}
    tokens, forced, differ = [], [], 0
    for i in range(warmup + repeats):
        fused, subtitle = windows[i % len(windows)]
        runs = {}
        for mode in ("decoded", "forced") if i % 2 else ("forced", "decoded"):  # neither always goes first
            if mode == "forced":
                got = answer(llm, prompt, fused, subtitle, task)
                runs[mode] = (got.token_ids, got.timings_ms["llm_prefill"], got.timings_ms["llm_decode"])
            else:
                pieces = prompt_pieces(llm, prompt, fused, subtitle, task.question)
                gen = generate(llm, pieces, task.max_new_tokens, prompt.eos_id, prompt.stop_text, task.grammar)
                runs[mode] = (gen.ids, gen.prefill_ms, gen.decode_ms)
        differ += runs["forced"][0] != runs["decoded"][0]
        if i < warmup:
            continue
        for mode, (_, prefill, decode) in runs.items():
            stages[mode]["prefill"].append(prefill)
            stages[mode]["decode"].append(decode)
            stages[mode]["llm"].append(prefill + decode)
        ids = runs["forced"][0]
        opening = opening_ids(llm, task.opening)
        tokens.append(len(ids))
        forced.append(len(opening) if ids[:len(opening)] == opening else 0)
    pipeline.close()
    return {"task": task.name, "windows": repeats, "answers_differ": int(differ),
            "answer_tokens_p50": float(np.median(tokens)), "forced_tokens_p50": float(np.median(forced)),
            "p50_ms": {m: {k: float(np.median(v)) for k, v in st.items()} for m, st in stages.items()},
            "p95_ms": {m: {k: float(np.percentile(v, 95)) for k, v in st.items()} for m, st in stages.items()}}


def report(result: dict, meta: dict) -> str:
    p50, p95 = result["p50_ms"], result["p95_ms"]
    lines = [f"# Forced opening — {meta['bundle']} on {meta['cpu']} ({', '.join(meta['features']) or 'no SIMD features read'};"
             f" {meta['threads']} threads), task {result['task']}, {result['windows']} windows", "",
             f"Answer tokens p50 {result['answer_tokens_p50']:.0f}, of them forced (fed without logits) "
             f"{result['forced_tokens_p50']:.0f}; answers that differ: {result['answers_differ']}.", "",
             "| opening | prefill p50 | decode p50 | LLM stage p50 / p95 |", "|---|---|---|---|"]
    for mode, name in (("decoded", "chosen from the logits"), ("forced", "fed without logits")):
        lines.append(f"| {name} | {p50[mode]['prefill']:.0f} ms | {p50[mode]['decode']:.0f} | "
                     f"{p50[mode]['llm']:.0f} / {p95[mode]['llm']:.0f} |")
    saving = p50["decoded"]["llm"] - p50["forced"]["llm"]
    lines += ["", f"The LLM stage is {saving:.0f} ms shorter at the median "
                  f"({100 * saving / p50['decoded']['llm']:.0f} %)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.forced_opening", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", help="default: the shipped default, over its sample clips")
    ap.add_argument("--samples", help="samples.jsonl of clips and subtitles (default: the shipped samples)")
    ap.add_argument("--task", default="labels")
    ap.add_argument("--repeats", type=int, default=27)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from quant.cpu import cpu

    listing = Path(args.samples) if args.samples else DEMO / "samples" / "samples.jsonl"
    samples = [(listing.parent / s["file"], s) for s in map(json.loads, listing.read_text().splitlines())]
    bundle = Path(args.bundle) if args.bundle else DEMO / "bundle"
    result = measure(bundle, samples, args.repeats, args.warmup, args.threads, args.task)
    meta = {"bundle": args.bundle or "the shipped default", "cpu": cpu_name(), "features": cpu()["features"],
            "threads": args.threads}
    print(write_report(args.out, "forced_opening", {"meta": meta, "result": result}, report(result, meta)))
    return 1 if result["answers_differ"] else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
