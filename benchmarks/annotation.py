"""The annotation engine measured where the truth is known: the synthetic corpus's test split, drawn with a seed no
bundle was trained on (its identities and sentence templates are the test split's: unseen by the bundle's training,
and no voter is fitted to anything).

    python -m benchmarks.annotation render --out results/annotation/corpus --plan 3200 --seed 11   # 331 test clips
    python -m train.annotate --videos results/annotation/corpus/videos --out results/annotation/dataset \\
        --subtitles results/annotation/corpus/subtitles.csv
    python -m benchmarks.annotation score --dataset results/annotation/dataset \\
        --truth results/annotation/corpus/truth.jsonl --out results/annotation

The engine reads the clips and their subtitles (an input, as MER-Caption's subtitles are), never the labels. The
score gives, after each filter in turn, the clips kept and the agreement of the engine's labels with the truth:
OV set-level F × 100 (the official wheels; clips whose truth is neutral have no labels and are left out of it, as
MER-UniBench does) and sentiment accuracy; then each voter's own sentiment accuracy and how often it abstains.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from benchmarks.emotion_wheel import EmotionWheel
from benchmarks.errors import BenchmarkError
from benchmarks.metrics import ov_scores
from benchmarks.report import write_report
from runtime.errors import run_cli

SENTIMENT = {1: "positive", -1: "negative", 0: "neutral"}
STAGES = ("speech", "sync", "length", "consensus")  # in the order they apply; the face filter is shown apart


def render(out: Path, plan_size: int, seed: int) -> int:
    """The test-split clips of a corpus plan (about a tenth of `plan_size`) → OUT/videos/*.mp4, OUT/truth.jsonl,
    OUT/subtitles.csv. Clips already there are kept."""
    from train.corpus import _clip_job, plan

    rows, identities = plan(plan_size, seed)
    by_id = {i.id: asdict(i) for i in identities}
    test = [(k, r) for k, r in enumerate(rows) if r["split"] == "test"]
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    for k, row in test:
        if not (videos / row["path"]).is_file():
            _clip_job((str(videos), row, by_id[row["identity"]], seed * 1_000_003 + k))
    (out / "truth.jsonl").write_text("".join(json.dumps(r) + "\n" for _, r in test))
    with open(out / "subtitles.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("name", "english"))
        writer.writerows((r["name"], r["subtitle"]) for _, r in test)
    return len(test)


def score(records: dict[str, dict], truth: dict[str, dict], wheel: EmotionWheel) -> dict:
    records = {n: r for n, r in records.items() if n in truth and "error" not in r}
    if not records:
        raise BenchmarkError("no annotated clip is in the truth file")

    def agreement(names: list[str]) -> dict:
        gt = {n: truth[n]["labels"] for n in names}
        pred = {n: records[n]["labels"] for n in names}
        ov = ov_scores(wheel, gt, pred) if any(gt.values()) else {"score": float("nan"), "n": [0]}
        hits = [records[n]["sentiment"] == SENTIMENT[truth[n]["sentiment"]] for n in names]
        return {"clips": len(names), "kept_%": 100 * len(names) / len(records), "ov_f": 100 * ov["score"],
                "ov_clips": int(max(ov["n"])), "sentiment_acc": 100 * float(np.mean(hits)) if hits else float("nan")}

    def passed(name: str, which: str) -> bool:
        return next(f["passed"] for f in records[name]["filters"] if f["filter"] == which)

    rows = [{"stage": "all annotated (MER-Caption)", **agreement(list(records))}]
    kept = list(records)
    for which in STAGES:
        kept = [n for n in kept if passed(n, which)]
        rows.append({"stage": f"+ {which}", **agreement(kept)})
    rows.append({"stage": "+ face (MER-Caption+ as run)", **agreement([n for n in kept if passed(n, "face")])})
    rows.append({"stage": "consensus alone", **agreement([n for n in records if passed(n, "consensus")])})
    # the bundle learnt the drawn world: without its vote, what the voters that never saw the corpus agree on
    from train.annotate.filters import consensus

    outside = [n for n in records
               if consensus({k: v for k, v in records[n]["votes"].items() if k != "bundle"}) == records[n]["sentiment"]]
    rows.append({"stage": "consensus alone, without the bundle's vote", **agreement(outside)})

    voters = {}
    for voter in sorted({v for r in records.values() for v in r["votes"]}):
        said = [(n, records[n]["votes"].get(voter)) for n in records]
        cast = [(n, v) for n, v in said if v is not None]
        voters[voter] = {"votes": len(cast), "abstains_%": 100 * (1 - len(cast) / len(said)),
                         "sentiment_acc": 100 * float(np.mean([v == SENTIMENT[truth[n]["sentiment"]] for n, v in cast]))
                         if cast else float("nan")}
    voters["description"] = {"votes": len(records), "abstains_%": 0.0,
                             "sentiment_acc": rows[0]["sentiment_acc"]}
    faces = [float(np.mean(r["clues"]["visual"]["face"])) for r in records.values()]
    return {"clips": len(records), "stages": rows, "voters": voters,
            "face_detected_mean_%": 100 * float(np.mean(faces)),
            "llm": sorted({r.get("llm", "") for r in records.values()}),
            "seconds_per_clip": float(np.median([r.get("seconds", 0) for r in records.values()]))}


def table(report: dict) -> str:
    lines = [f"Annotation engine on {report['clips']} unseen synthetic clips (merge LLM: {', '.join(report['llm'])}; "
             f"{report['seconds_per_clip']:.1f} s a clip, median)", "",
             "| stage (filters applied in turn) | clips kept | % of all | OV F × 100 (clips with labels) | sentiment accuracy % |",
             "|---|---|---|---|---|"]
    for r in report["stages"]:
        lines.append(f"| {r['stage']} | {r['clips']} | {r['kept_%']:.0f} | {r['ov_f']:.1f} ({r['ov_clips']}) | "
                     f"{r['sentiment_acc']:.1f} |")
    lines += ["", "| voter | votes cast | abstains % | sentiment accuracy % |", "|---|---|---|---|"]
    for name, v in report["voters"].items():
        lines.append(f"| {name} | {v['votes']} | {v['abstains_%']:.0f} | {v['sentiment_acc']:.1f} |")
    lines += ["", f"The device's face detector finds a face in {report['face_detected_mean_%']:.0f} % of "
              "frames on average."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.annotation", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="draw the unseen test clips and their truth")
    r.add_argument("--out", required=True)
    r.add_argument("--plan", type=int, default=3200, help="corpus rows planned; about a tenth are test clips")
    r.add_argument("--seed", type=int, default=11, help="a seed no shipped bundle was trained on")
    s = sub.add_parser("score", help="score an annotated dataset against the truth")
    s.add_argument("--dataset", required=True)
    s.add_argument("--truth", required=True, help="truth.jsonl from render (or a corpus manifest.jsonl)")
    s.add_argument("--wheel-dir")
    s.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.command == "render":
        print(json.dumps({"test_clips": render(Path(args.out), args.plan, args.seed), "out": args.out}))
        return 0
    from train.annotate.dataset import records

    truth = {}
    for line in Path(args.truth).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            truth[row["name"]] = row
    report = score(records(Path(args.dataset)), truth, EmotionWheel(args.wheel_dir))
    print(write_report(Path(args.out), "annotation", report, table(report)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, expected=(OSError, KeyError, ValueError)))
