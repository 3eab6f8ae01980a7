"""Does the annotation engine's output make the model better? The shipped default fine-tuned on the engine's labels and
descriptions against the same fine-tune on the true ones — same clips, same steps, several seeds — each scored on the
frozen held-out split (benchmarks/data/heldout), which neither the engine's clips nor the default's training saw.

    python -m benchmarks.annotation_finetune --dataset results/annotation/dataset \\
        --truth results/annotation/corpus/truth.jsonl --out results/annotation/finetune --seeds 1,2

The dataset is what `python -m train.annotate` wrote for `python -m benchmarks.annotation render` clips; `--set` picks
its table (train_mercaptionplus: the clips both filters kept; train_mercaption: every annotated clip). Every stage is a
command of the project (printed as it runs), skipped when a previous run finished it: a Ctrl-C and a re-run lose
nothing. The default's trainable weights come out of its bundle exactly (python -m export.unbundle).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

from benchmarks.errors import BenchmarkError
from benchmarks.recipe import log, run
from benchmarks.report import write_report
from quant.cpu import has_bf16
from runtime.atomic import write_text
from runtime.errors import run_cli
from train.annotate.dataset import csv_text, train_spec

ROOT = Path(__file__).resolve().parents[1]
FROZEN = ROOT / "benchmarks" / "data" / "heldout" / "test-0126542-seed1-160.jsonl"
DEFAULT_BUNDLE = ROOT / "runtime" / "demo" / "bundle"
SOURCES = ("engine", "truth")


def truth_tables(dataset: Path, which: str, truth: dict[str, dict], out: Path) -> list[str]:
    """OUT/track2.csv and track3.csv: the true labels and descriptions of exactly the clips of the dataset's `which`
    table. → their names."""
    with open(dataset / f"track2_{which}.csv", newline="", encoding="utf-8") as f:
        names = [row["name"] for row in csv.DictReader(f)]
    unknown = [n for n in names if n not in truth]
    if unknown:
        raise BenchmarkError(f"{len(unknown)} clips of the dataset are not in the truth file, e.g. {unknown[:3]}")
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "track2.csv", csv_text(((n, "[" + ", ".join(truth[n]["labels"]) + "]") for n in names), ("name", "openset")))
    write_text(out / "track3.csv", csv_text(((n, truth[n]["description"]) for n in names), ("name", "reason")))
    return names


def heldout_corpus(out: Path) -> Path:
    """The frozen held-out clips, drawn again (the corpus code draws the same clips for the same plan and seed), with
    the frozen rows as the manifest. → the folder benchmarks.heldout takes as --corpus."""
    videos = out / "videos"
    rows = [json.loads(line) for line in FROZEN.read_text().splitlines() if line.strip()]
    if not all((videos / r["path"]).is_file() for r in rows):
        run("benchmarks.annotation", "render", "--out", str(out), "--plan", "3200", "--seed", "1")
    missing = [r["name"] for r in rows if not (videos / r["path"]).is_file()]
    if missing:
        raise BenchmarkError(f"the corpus code no longer draws the frozen held-out clips, e.g. {missing[:3]}")
    write_text(videos / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return videos


def score(bundle: Path, corpus: Path, out: Path) -> dict:
    if not (out / "heldout.json").is_file():
        run("benchmarks.heldout", "--bundle", str(bundle), "--corpus", str(corpus), "--split", "test", "--clips", "160",
            "--conditions", "full", "--out", str(out))
    return json.loads((out / "heldout.json").read_text())["scores"]["full"]


def finetune(init: Path, spec: str, seed: int, args, out: Path) -> dict:
    """Fine-tune, export, score one model; each stage skipped when done. → its row."""
    run_dir, bundle = out / "run", out / "bundle"
    if not (run_dir / "metrics.json").is_file():
        run("train", "--init-checkpoint", str(init), "--data", spec, "--label-type", "hybrid", "--epochs", str(args.epochs),
            "--lr", str(args.lr), "--batch-size", str(args.batch_size), "--seed", str(seed), "--no-progress",
            *(["--amp", "bf16"] if has_bf16() else []),  # as the default's recipe trains it
            *(["--resume"] if (run_dir / "checkpoint").is_dir() else []),  # an interrupted run goes on where it was
            "--out", str(run_dir))
    if not (bundle / "manifest.json").is_file():
        run("export", "--checkpoint", str(run_dir / "checkpoint"), "--out", str(bundle), "--name", out.name)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"steps": metrics.get("steps"), **score(bundle, args.heldout_corpus, out / "heldout")}


def table(report: dict) -> str:
    lines = [f"Fine-tuned from the shipped default on {report['clips']} annotated clips ({report['set']}), "
             f"{report['epochs']} epochs, lr {report['lr']}, batch {report['batch_size']}; scored on the frozen held-out "
             "split (160 clips, × 100)", "",
             "| labels | seed | steps | hit rate | sentiment F1 | OV F | mean |", "|---|---|---|---|---|---|---|"]
    b = report["default"]
    lines.append(f"| (the default, not fine-tuned) | – | – | {b['hit_rate']:.1f} | {b['sentiment_f1']:.1f} | "
                 f"{b['ov_f']:.1f} | {b['mean']:.1f} |")
    for row in report["runs"]:
        lines.append(f"| {row['labels']} | {row['seed']} | {row['steps']} | {row['hit_rate']:.1f} | "
                     f"{row['sentiment_f1']:.1f} | {row['ov_f']:.1f} | {row['mean']:.1f} |")
    for source, s in report["summary"].items():
        lines.append(f"| **{source}, mean of seeds** | | | | | | **{s['mean']:.1f}** (± {s['spread']:.1f}) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.annotation_finetune", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--dataset", required=True, help="a folder python -m train.annotate wrote")
    ap.add_argument("--truth", required=True, help="truth.jsonl from python -m benchmarks.annotation render")
    ap.add_argument("--set", default="train_mercaptionplus", help="the dataset's table to train on")
    ap.add_argument("--bundle", default=str(DEFAULT_BUNDLE), help="the bundle to start from (default: the shipped default)")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    dataset, out = Path(args.dataset), Path(args.out)
    if not (dataset / f"track2_{args.set}.csv").is_file():
        raise BenchmarkError(f"{dataset} has no track2_{args.set}.csv: is it a folder python -m train.annotate wrote?")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    truth = {}
    for line in Path(args.truth).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            truth[row["name"]] = row
    names = truth_tables(dataset, args.set, truth, out / "truth")
    if len(names) < 2 * args.batch_size:
        raise BenchmarkError(f"{len(names)} clips in {args.set}: too few to fine-tune on")
    if not (out / "default" / "unbundled.json").is_file():
        run("export.unbundle", args.bundle, "--out", str(out / "default"))
    args.heldout_corpus = heldout_corpus(out / "heldout-corpus")
    specs = {"engine": train_spec(dataset, args.set),
             "truth": f"{dataset / 'video'}:{out / 'truth' / 'track2.csv'},{out / 'truth' / 'track3.csv'}:"
                      f"{dataset / 'subtitle_chieng.csv'}"}
    report = {"clips": len(names), "set": args.set, "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
              "default": score(Path(args.bundle), args.heldout_corpus, out / "default-heldout"), "runs": []}
    for seed in seeds:
        for source in SOURCES:
            log(f"fine-tuning on the {source} labels, seed {seed}")
            row = finetune(out / "default" / "checkpoint", specs[source], seed, args, out / f"{source}-s{seed}")
            report["runs"].append({"labels": source, "seed": seed, **row})
    report["summary"] = {}
    for source in SOURCES:
        means = [r["mean"] for r in report["runs"] if r["labels"] == source]
        report["summary"][source] = {"mean": statistics.fmean(means), "spread": (max(means) - min(means)) / 2}
    print(write_report(out, "annotation_finetune", report, table(report)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, expected=(OSError, KeyError, ValueError)))
