"""The embedded default, from scratch, as the sequence of the project's own commands: corpus → pretrained
small encoders → cached features → fusion + LLM training → bundle → quantized variants → accuracy gate →
held-out scores and ablations → (with --ship) the bundle and sample clips copied to where the runtime finds them.

    python -m train.demo --out runs/demo --seed 1 --ship

Each stage is one command a user could type (they are printed as they run), so this recipe imports nothing
from the packages above `train`; `--resume` skips the stages an interrupted run finished.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from runtime.atomic import atomic_dir

SHIP_DIR = Path(__file__).resolve().parents[1] / "runtime" / "demo"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(*args: str) -> float:
    """Run `python -m ARGS` (stdout and stderr go to ours); → seconds. A failed stage stops the recipe."""
    log("$ python -m " + shlex.join(args))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", *args], check=True)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.demo", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=1600, help="clips in the corpus")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrain-samples", type=int, default=640, help="training clips the audio encoder learns from")
    ap.add_argument("--pretrain-epochs", type=int, default=4, help="audio encoder pretraining epochs")
    ap.add_argument("--vision-frames", type=int, default=12000, help="rendered frames the vision encoder learns from")
    ap.add_argument("--vision-epochs", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--eval-clips", type=int, default=160, help="held-out test clips scored (the split has about n/10)")
    ap.add_argument("--ship", action="store_true", help="copy the bundle and sample clips into runtime/demo/")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the finished stages in --out (corpus, pretrained encoders, features, training)")
    args = ap.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus, seed = out / "corpus", str(args.seed)
    times = {}
    try:
        if args.resume and (corpus / "manifest.jsonl").is_file():
            log(f"reusing the corpus in {corpus}")
        else:
            times["corpus_s"] = run("train.synth", "--out", str(corpus), "--n", str(args.n), "--seed", seed)
        if args.resume and (out / "init" / "config.json").is_file():
            log(f"reusing the pretrained encoders in {out / 'init'}")
        else:
            times["pretrain_s"] = run("train.pretrain", "--corpus", str(corpus), "--out", str(out), "--seed", seed,
                                      "--vision-frames", str(args.vision_frames), "--vision-epochs", str(args.vision_epochs),
                                      "--audio-samples", str(args.pretrain_samples),
                                      "--audio-epochs", str(args.pretrain_epochs))
        times["cache_s"] = run("train.cache", "--checkpoint", str(out / "init"), "--data", str(corpus / "manifest.jsonl"),
                               "--out", str(out / "features"))
        times["train_s"] = run("train", "--data", str(corpus / "train.jsonl"), "--val-data", str(corpus / "val.jsonl"),
                               "--out", str(out / "run"), "--init-checkpoint", str(out / "init"),
                               "--features", str(out / "features"), "--label-type", "hybrid", "--epochs", str(args.epochs),
                               "--batch-size", "16", "--lr", "2e-3", "--warmup-lr", "1e-4", "--warmup-steps", "60",
                               "--weight-decay", "0.01", "--seed", seed, *(["--resume"] if args.resume else []))
        bundle = out / "bundle"
        rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
        val = [r for r in rows if r["split"] == "val"]
        calibration = _clip_folder(out / "calibration", corpus, val[:16])
        gate_clips = _clip_folder(out / "gate-clips", corpus, val[:40])
        with open(out / "gate-labels.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["name", "openset"])
            writer.writerows([r["name"], "[" + ", ".join(r["labels"]) + "]"] for r in val[:40])
        times["export_and_gate_s"] = sum((
            run("export", "--checkpoint", str(out / "run" / "checkpoint"), "--out", str(bundle), "--name", "affectgpt-demo"),
            run("quant", "gguf", "--bundle", str(bundle), "--types", "Q8_0,Q4_K_M"),
            run("quant", "onnx", "--bundle", str(bundle), "--variants", "int8-dynamic", "--clips", str(calibration)),
            run("benchmarks.gate", "--bundle", str(bundle), "--clips", str(gate_clips),
                "--labels", str(out / "gate-labels.csv"), "--out", str(out / "gate"))))
        times["evaluate_s"] = run("benchmarks.heldout", "--bundle", str(bundle), "--corpus", str(corpus), "--split", "test",
                                  "--clips", str(args.eval_clips), "--out", str(out / "heldout"))
    except subprocess.CalledProcessError as err:
        log(f"stage failed (exit {err.returncode}): python -m {shlex.join(err.cmd[2:])}")
        return 1
    summary = {"times": times, "evaluation": json.loads((out / "heldout" / "heldout.json").read_text()),
               "bundle_bytes": {k: v["bytes"] for k, v in json.loads((bundle / "manifest.json").read_text())["files"].items()}}
    (out / "demo.json").write_text(json.dumps(summary, indent=2))
    if args.ship:
        ship(bundle, corpus, [r for r in rows if r["split"] == "test"])
    return 0


def _clip_folder(folder: Path, corpus: Path, rows: list[dict]) -> Path:
    folder.mkdir(exist_ok=True)
    for r in rows:
        shutil.copy(corpus / r["path"], folder / r["path"])
    return folder


def ship(bundle: Path, corpus: Path, test_rows: list[dict]) -> None:
    """Copy the bundle (every variant, the fp32 reference included) and one held-out clip per emotion to
    runtime/demo/, where the runtime finds them by default."""
    with atomic_dir(SHIP_DIR) as tmp:
        shutil.copytree(bundle, tmp / "bundle")
        (tmp / "samples").mkdir()
        picked = {}
        for r in test_rows:
            if r["emotion"] not in picked and r["text_kind"] != "contradicting":
                picked[r["emotion"]] = r
        lines = []
        for emotion, r in sorted(picked.items()):
            name = f"{emotion}.mp4"
            shutil.copy(corpus / r["path"], tmp / "samples" / name)
            lines.append({"file": name, "subtitle": r["subtitle"], "labels": r["labels"], "emotion": emotion})
        (tmp / "samples" / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    log(f"shipped to {SHIP_DIR}")


if __name__ == "__main__":
    sys.exit(main())
