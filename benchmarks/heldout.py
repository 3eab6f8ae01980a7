"""Held-out scores of a bundle on a corpus split, full model and ablations: each input taken away from the
same trained model at inference (pre-fusion token, audio or video features zeroed, subtitle left out).

    python -m benchmarks.heldout --bundle B --corpus runs/demo/corpus --split test --clips 160 --out results/heldout

The corpus is one `python -m train.synth --out` wrote (manifest.jsonl with split, emotion, sentiment, labels).
Scores as MER-UniBench computes them: hit rate on the basic emotion, sentiment weighted F1, OV set-level F
through the five emotion wheels, and their mean (× 100). Encoders and LLM run in fp32 / the exported GGUF unless
`--encoders` / `--llm-variant` pick the variants the runtime deploys.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.emotion_wheel import EmotionWheel
from benchmarks.errors import BenchmarkError
from benchmarks.metrics import hit_rate, labels_to_sentiment, ov_scores, sentiment_f1
from benchmarks.report import write_report
from runtime.errors import run_cli
from runtime.media import read_clip_for
from runtime.pipeline import Pipeline, RuntimeOptions
from runtime.task import get_task
from runtime.timing import Stopwatch

CONDITIONS = ("full", "no pre-fusion", "no audio", "no video", "no subtitle")


def ablated(pipeline: Pipeline, features, condition: str) -> np.ndarray:
    """The fused rows with one input taken away (the face / audio features zeroed before the fusion, or the
    multi token zeroed after it)."""
    enc = pipeline.encoders
    if condition == "no video":
        return enc.fuse(np.zeros_like(features.face), features.audio)
    if condition == "no audio":
        return enc.fuse(features.face, np.zeros_like(features.audio))
    fused = features.fused
    if condition == "no pre-fusion":
        fused = fused.copy()
        fused[0] = 0.0  # the multi token
    return fused


def evaluate(bundle: str | Path, rows: list[dict], corpus: str | Path, task, wheel_dir: str | None = None,
             threads: int | None = None, progress: bool = True, encoders: str = "fp32", llm_variant: str = "",
             conditions: tuple[str, ...] = CONDITIONS) -> dict:
    from tqdm import tqdm

    wheel = EmotionWheel(wheel_dir)
    pipeline = Pipeline(bundle, RuntimeOptions(threads=threads, encoder_variant=encoders, llm_variant=llm_variant))
    prep = pipeline.manifest.preprocessing
    preds = {c: {} for c in conditions}
    ms = []
    try:
        for row in tqdm(rows, desc="clips", disable=not progress):
            clip = read_clip_for(Path(corpus) / row["path"], prep)
            watch = Stopwatch()
            features = pipeline.features(clip)
            for condition in conditions:
                subtitle = "" if condition == "no subtitle" else row["subtitle"]
                preds[condition][row["name"]] = pipeline.answer(ablated(pipeline, features, condition), subtitle, task).labels
                if condition == "full":
                    ms.append(watch.total_ms())
    finally:
        pipeline.close()
    basic = {r["name"]: r["emotion"] for r in rows}
    valence = {r["name"]: r["sentiment"] for r in rows}
    openset = {r["name"]: r["labels"] for r in rows}
    table = {}
    for condition, labels in preds.items():
        hr = hit_rate(wheel, basic, labels)["score"]
        f1 = sentiment_f1(valence, {n: labels_to_sentiment(wheel, ls) for n, ls in labels.items()})["score"]
        ov = ov_scores(wheel, openset, labels)["score"]
        table[condition] = {"hit_rate": 100 * hr, "sentiment_f1": 100 * f1, "ov_f": 100 * ov, "mean": 100 * (hr + f1 + ov) / 3}
    return {"clips": len(rows), "encoders": encoders, "llm": llm_variant or "exported", "task": {"name": task.name, "grammar": task.grammar is not None,
                                         "max_new_tokens": task.max_new_tokens},
            "scores": table, "answer_ms_p50": float(np.median(ms)) if ms else 0.0}


def table(result: dict) -> str:
    lines = [f"| held-out ({result['clips']} clips, task {result['task']['name']}"
             f"{'' if result['task']['grammar'] else ', unconstrained'}) | hit rate | sentiment weighted F1 | OV F | mean |",
             "|---|---|---|---|---|"]
    for condition, s in result["scores"].items():
        lines.append(f"| {condition} | {s['hit_rate']:.1f} | {s['sentiment_f1']:.1f} | {s['ov_f']:.1f} | {s['mean']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.heldout", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--corpus", required=True, help="corpus folder with manifest.jsonl")
    ap.add_argument("--split", default="test")
    ap.add_argument("--clips", type=int, default=160, help="first N clips of the split")
    ap.add_argument("--task", default="labels")
    ap.add_argument("--max-new-tokens", type=int, help="answer budget (default: the task's)")
    ap.add_argument("--unconstrained", action="store_true",
                    help="decode without the task's grammar, as the official evaluation does")
    ap.add_argument("--wheel-dir", help="emotion-wheel tables (default: the official ones shipped in the package)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--encoders", default="fp32", help="encoder variant (default fp32: the model as trained)")
    ap.add_argument("--llm-variant", default="", help="GGUF variant, e.g. q4_k_m (default: the exported one)")
    ap.add_argument("--conditions", default=",".join(CONDITIONS),
                    help=f"comma-separated, of: {', '.join(CONDITIONS)} (default: all)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    conditions = tuple(c.strip() for c in args.conditions.split(",") if c.strip())
    if not conditions or set(conditions) - set(CONDITIONS):
        raise BenchmarkError(f"--conditions takes {', '.join(CONDITIONS)}, not {args.conditions!r}")

    task = get_task(args.task, args.max_new_tokens)
    if args.unconstrained:
        task = task.unconstrained()
    manifest = Path(args.corpus) / "manifest.jsonl"
    if not manifest.is_file():
        raise BenchmarkError(f"{args.corpus} is not a corpus: it has no manifest.jsonl (python -m train.synth --out)")
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("split") == args.split][: args.clips]
    if not rows:
        raise BenchmarkError(f"no clips of split {args.split!r} in {manifest}")
    result = evaluate(args.bundle, rows, args.corpus, task, args.wheel_dir, args.threads, encoders=args.encoders,
                      llm_variant=args.llm_variant, conditions=conditions)
    print(write_report(args.out, "heldout", result, table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, expected=(OSError, ValueError)))  # an unreadable or malformed manifest
