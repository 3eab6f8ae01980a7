"""The embedded default, from scratch: corpus → tokenizer → pretrained small encoders → cached features →
fusion + LLM training → bundle → quantized variants through the accuracy gate → held-out scores and
ablations → (with --ship) the bundle and sample clips copied to where the runtime finds them.

    python -m train.demo --out runs/demo --ship
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

SHIP_DIR = Path(__file__).resolve().parents[1] / "runtime" / "demo"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def evaluate(bundle: Path, rows: list[dict], corpus: Path, wheel_dir: str | None = None) -> dict:
    """MER-UniBench-style scores on held-out rows, and the same model with one part taken away."""
    from benchmarks.emotion_wheel import EmotionWheel, WheelDataError
    from benchmarks.metrics import hit_rate, labels_to_sentiment, ov_scores, sentiment_f1
    from runtime.media import read_clip
    from runtime.pipeline import Pipeline, RuntimeOptions
    from runtime.preprocess import audio_clips, pixel_values

    try:
        wheel = EmotionWheel(wheel_dir)
        wheel.format_mapping
    except WheelDataError:
        return {"error": "emotion-wheel tables not found: scores need ../shared/data/affectgpt-emotion-wheel"}
    pipeline = Pipeline(bundle, RuntimeOptions(max_new_tokens=40, encoder_variant="fp32", llm_variant=""))
    prep = pipeline.manifest.preprocessing
    enc = pipeline.encoders
    conditions = ("full", "no pre-fusion", "no audio", "no video", "no subtitle")
    preds = {c: {} for c in conditions}
    ms = []
    for row in rows:
        clip = read_clip(corpus / row["path"], prep.num_frames, prep.sample_rate)
        t = time.perf_counter()
        face = enc.encode_frames(pixel_values(clip.frames, prep))
        audio = enc.encode_clips(audio_clips(clip.waveform, prep))
        for condition in conditions:
            f = np.zeros_like(face) if condition == "no video" else face
            a = np.zeros_like(audio) if condition == "no audio" else audio
            fused = enc.fuse(f, a)
            if condition == "no pre-fusion":
                fused = fused.copy()
                fused[0] = 0.0  # the multi token
            subtitle = "" if condition == "no subtitle" else row["subtitle"]
            _, _, labels = pipeline.answer_fused(fused, subtitle, grammar=None)
            preds[condition][row["name"]] = labels
            if condition == "full":
                ms.append((time.perf_counter() - t) * 1e3)
    basic = {r["name"]: r["emotion"] for r in rows}
    valence = {r["name"]: r["sentiment"] for r in rows}
    openset = {r["name"]: r["labels"] for r in rows}
    table = {}
    for condition, labels in preds.items():
        hr = hit_rate(wheel, basic, labels)["score"]
        f1 = sentiment_f1(valence, {n: labels_to_sentiment(wheel, l) for n, l in labels.items()})["score"]
        ov = ov_scores(wheel, openset, labels)["score"]
        table[condition] = {"hit_rate": 100 * hr, "sentiment_f1": 100 * f1, "ov_f": 100 * ov,
                            "mean": 100 * (hr + f1 + ov) / 3}
    pipeline.close()
    return {"clips": len(rows), "scores": table, "answer_ms_p50": float(np.median(ms))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=1600, help="clips in the corpus")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrain-samples", type=int, default=640, help="training clips the audio encoder learns from")
    ap.add_argument("--pretrain-epochs", type=int, default=4, help="audio encoder pretraining epochs")
    ap.add_argument("--vision-frames", type=int, default=12000, help="rendered frames the vision encoder learns from")
    ap.add_argument("--vision-epochs", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--eval-clips", type=int, default=160, help="held-out test clips scored (the split has about n/10)")
    ap.add_argument("--wheel-dir")
    ap.add_argument("--ship", action="store_true", help="copy the bundle and sample clips into runtime/demo/")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the finished stages in --out (corpus, pretrained encoders, features, training)")
    args = ap.parse_args(argv)

    from export.bundle import export_bundle
    from quant.gguf import quantize_gguf
    from quant.onnx import quantize_onnx
    from quant.report import gate, write
    from runtime.manifest import read_manifest
    from train.cache import build_cache
    from train.checkpoint import load_checkpoint
    from train.corpus import write_corpus
    from train.data import read_jsonl
    from train.loop import TrainConfig, train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    times = {}
    t = time.perf_counter()
    corpus = out / "corpus"
    if args.resume and (corpus / "manifest.jsonl").is_file():
        log(f"reusing the corpus in {corpus}")
    else:
        log(f"corpus of {args.n} clips")
        write_corpus(corpus, args.n, args.seed)
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    split = {s: [r for r in rows if r["split"] == s] for s in ("train", "val", "test")}
    times["corpus_s"] = time.perf_counter() - t

    t = time.perf_counter()
    if args.resume and (out / "init" / "config.json").is_file():
        log(f"reusing the pretrained encoders in {out / 'init'}")
        pre = json.loads((out / "pretrain.json").read_text())
    else:
        pre = pretrain(args, out, corpus, split, log)
    times["pretrain_s"] = time.perf_counter() - t

    t = time.perf_counter()
    log("caching features")
    model = load_checkpoint(out / "init")
    build_cache(model.eval(), read_jsonl(corpus / "manifest.jsonl"), out / "features")
    times["cache_s"] = time.perf_counter() - t

    t = time.perf_counter()
    log("training fusion + LLM")
    result = train(TrainConfig(data=str(corpus / "train.jsonl"), val_data=str(corpus / "val.jsonl"), out=str(out / "run"),
                               init_checkpoint=str(out / "init"), features=str(out / "features"), label_type="hybrid",
                               epochs=args.epochs, batch_size=16, lr=2e-3, warmup_lr=1e-4, warmup_steps=60,
                               weight_decay=0.01, seed=args.seed, resume=args.resume))
    times["train_s"] = time.perf_counter() - t
    log(f"validation loss by epoch: {[round(v['loss'], 3) for v in result['val']]}")

    t = time.perf_counter()
    bundle = out / "bundle"
    export_bundle(load_checkpoint(out / "run" / "checkpoint"), bundle, "f16", name="affectgpt-demo")
    quantize_gguf(bundle, ["Q8_0", "Q4_K_M"])
    calib = out / "calibration"
    calib.mkdir(exist_ok=True)
    for r in split["val"][:16]:
        shutil.copy(corpus / r["path"], calib / r["path"])
    quantize_onnx(bundle, ["int8-dynamic"], str(calib))
    gate_clips = out / "gate-clips"
    gate_clips.mkdir(exist_ok=True)
    for r in split["val"][:40]:
        shutil.copy(corpus / r["path"], gate_clips / r["path"])
    truth = {r["name"]: r["labels"] for r in split["val"][:40]}
    report = gate(bundle, sorted(gate_clips.iterdir()), truth=truth, wheel_dir=args.wheel_dir)
    log("\n" + write(report, out / "gate"))
    times["export_and_gate_s"] = time.perf_counter() - t

    t = time.perf_counter()
    log(f"held-out scores on {args.eval_clips} test clips")
    scores = evaluate(bundle, split["test"][: args.eval_clips], corpus, args.wheel_dir)
    times["evaluate_s"] = time.perf_counter() - t
    summary = {"times": times, "pretrain": pre, "val": result["val"], "evaluation": scores,
               "bundle_bytes": {k: v.bytes for k, v in read_manifest(bundle).files.items()}}
    (out / "demo.json").write_text(json.dumps(summary, indent=2))
    log(json.dumps(scores, indent=2))

    if args.ship:
        ship(bundle, corpus, split["test"])
    return 0


def pretrain(args, out: Path, corpus: Path, split: dict, log) -> dict:
    """Tokenizer, then the demo model with its encoders pretrained and frozen → out/init (a checkpoint)."""
    from train.checkpoint import save_checkpoint
    from train.config import demo
    from train.data import read_jsonl
    from train.model import AffectGPT
    from train.pretrain import pretrain_audio, pretrain_vision
    from train.tokenizer import train_tiny_tokenizer

    text = [r["subtitle"] for r in split["train"]] + [r["description"] for r in split["train"]]
    tokenizer = train_tiny_tokenizer(1024, text)
    tokenizer.save(str(out / "tokenizer.json"))
    cfg = demo(args.seed)
    cfg.tokenizer_path = str((out / "tokenizer.json").resolve())
    model = AffectGPT.build(cfg)
    log(f"pretraining the vision encoder on {args.vision_frames} rendered frames")
    pre = {"vision": pretrain_vision(model, frames=args.vision_frames, epochs=args.vision_epochs, seed=args.seed, log=log)}
    log(f"pretraining the audio encoder on {min(args.pretrain_samples, len(split['train']))} clips")
    train_rows = split["train"][: args.pretrain_samples]
    samples = {s.name: s for s in read_jsonl(corpus / "train.jsonl")}
    pre["audio"] = pretrain_audio(model, train_rows, [samples[r["name"]] for r in train_rows],
                                  epochs=args.pretrain_epochs, batch_size=16, seed=args.seed, log=log)
    (out / "encoders").mkdir(exist_ok=True)
    model.vision.clip.save_pretrained(out / "encoders" / "vision")
    model.audio.hubert.save_pretrained(out / "encoders" / "audio")
    cfg.vision_path = str((out / "encoders" / "vision").resolve())
    cfg.audio_path = str((out / "encoders" / "audio").resolve())
    (out / "pretrain.json").write_text(json.dumps(pre, indent=2))
    save_checkpoint(model, out / "init")  # last: its presence marks the stage done
    return pre


def ship(bundle: Path, corpus: Path, test_rows: list[dict]) -> None:
    """Copy the bundle (every variant, the fp32 reference included) and one held-out clip per emotion to
    runtime/demo/, where the runtime finds them by default."""
    from train.checkpoint import atomic_dir

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
