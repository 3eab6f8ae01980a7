"""Pretraining the small encoders of the corpus presets (scratch, gemma-270m), where no pretrained CLIP / HuBERT
weights can be had. Then they are frozen, as the paper freezes its encoders.

Vision: frames drawn by the corpus's renderer for fresh identities (none of them in the corpus), each showing
one emotion's full expression; the ViT learns to read the expression parameters and the emotion off a single
frame. A from-scratch ViT needs many faces to see a 3-pixel mouth-corner pull rather than memorise who is who,
and rendering is cheaper than decoding clips. Audio: the corpus's own training clips; HuBERT learns the
prosody parameters and the voice's emotion.

    python -m train.pretrain --preset scratch --corpus runs/scratch/corpus --out runs/scratch --seed 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

from runtime.manifest import Preprocessing
from runtime.media import MediaError
from runtime.errors import run_cli
from runtime.preprocess import pixel_values
from train.config import CORPUS, preset_argument
from train.data import DataError, load_media

EXPRESSION_KEYS = ("smile", "brow_raise", "brow_lower", "brow_knit", "eye_open", "mouth_open", "nod", "shake")
PROSODY_KEYS = ("pitch", "range", "rate", "loudness", "tremor", "pauses")
PROSODY_SCALE = {"pitch": 100, "rate": 200, "loudness": 200, "pauses": 2}
FRAME_SIZE = (120, 160)  # (h, w) the corpus renders at
IDENTITY_OFFSET = 1_000_000  # ids of the fresh identities: far from the corpus's


def expression_target(expression: dict) -> np.ndarray:
    """Action-unit parameters → regression target (eye_open as its change from open)."""
    return np.array([expression.get(k, 1.0 if k == "eye_open" else 0.0) - (1.0 if k == "eye_open" else 0.0)
                     for k in EXPRESSION_KEYS], np.float32)


def prosody_target(prosody: dict) -> np.ndarray:
    return np.array([prosody[k] / PROSODY_SCALE.get(k, 1) for k in PROSODY_KEYS], np.float32)


def _render_job(args) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from train.corpus import EMOTIONS, make_identity, render

    n, seed, prep = args
    rng = np.random.default_rng(seed)
    classes = list(EMOTIONS)
    frames, targets, labels = [], [], []
    for _ in range(n):
        ident = make_identity(IDENTITY_OFFSET + int(rng.integers(1 << 30)), rng)
        emotion = classes[int(rng.integers(len(classes)))]
        expression = EMOTIONS[emotion][2]
        # any time after the expression has built up: nods, shakes, talking and blinks vary with it
        frames.append(render(ident, expression, float(rng.uniform(0.7, 6.0)), *FRAME_SIZE, rng))
        targets.append(expression_target(expression))
        labels.append(classes.index(emotion))
    return pixel_values(frames, prep), np.stack(targets), np.array(labels)


def rendered_expressions(n: int, seed: int, prep: Preprocessing, workers: int | None = None):
    """n frames of fresh identities → (pixel values [n, 3, S, S], expression targets [n, 8], emotion ids [n])."""
    chunk = 250
    jobs = [(min(chunk, n - i), seed * 100_003 + i, prep) for i in range(0, n, chunk)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_render_job, jobs))
    return tuple(torch.from_numpy(np.concatenate(p)) for p in zip(*parts))


def _with_head(encoder: nn.Module, outputs: int, lr: float, weight_decay: float):
    """A linear head on the encoder's features (discarded after pretraining) → (head, parameters, AdamW)."""
    head = nn.Linear(encoder.dim, outputs)
    params = list(encoder.parameters()) + list(head.parameters())
    for p in params:
        p.requires_grad_(True)
    return head, params, torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _schedule(optimizer, warmup: int, total: int):
    """Linear warm-up, then cosine decay: a from-scratch ViT does not train at a constant 1e-3."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))


def pretrain_vision(model, frames: int = 12000, epochs: int = 20, batch_size: int = 64, lr: float = 5e-4,
                    warmup: int = 200, seed: int = 0, log=print) -> dict:
    """Regress the expression parameters and classify the emotion of single rendered frames, through a linear
    head on the projected embedding (the head is discarded). Validation: 10 % more frames of other identities."""
    from train.corpus import EMOTIONS

    torch.manual_seed(seed)
    prep = model.cfg.preprocessing
    t0 = time.perf_counter()
    x, y, c = rendered_expressions(frames, seed, prep)
    vx, vy, vc = rendered_expressions(max(frames // 10, 1), seed + 1, prep)
    log(f"rendered {len(x)} + {len(vx)} frames of fresh identities ({time.perf_counter() - t0:.0f} s)")
    n_expr = len(EXPRESSION_KEYS)
    head, params, optimizer = _with_head(model.vision, n_expr + len(EMOTIONS), lr, weight_decay=0.05)
    steps = max(len(x) // batch_size, 1)
    scheduler = _schedule(optimizer, warmup, steps * epochs)
    baseline = float(((vy - y.mean(0)) ** 2).mean())
    history = []
    for epoch in range(epochs):
        model.vision.train()
        order, losses, t0 = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed + epoch)), [], time.perf_counter()
        for i in range(steps):
            idx = order[i * batch_size:(i + 1) * batch_size]
            out = head(model.vision(x[idx]))
            mse = nn.functional.mse_loss(out[:, :n_expr], y[idx])
            loss = mse + 0.5 * nn.functional.cross_entropy(out[:, n_expr:], c[idx])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(float(mse.detach()))
        model.vision.eval()
        with torch.no_grad():
            out = torch.cat([head(model.vision(vx[i:i + 256])) for i in range(0, len(vx), 256)])
        val_mse = float(((out[:, :n_expr] - vy) ** 2).mean())
        accuracy = float((out[:, n_expr:].argmax(1) == vc).float().mean())
        history.append({"epoch": epoch + 1, "train_mse": float(np.mean(losses)), "val_mse": val_mse,
                        "val_accuracy": accuracy})
        log(f"vision epoch {epoch + 1}/{epochs}: expression mse {np.mean(losses):.4f}, held-out {val_mse:.4f} "
            f"(predicting the mean: {baseline:.4f}), emotion accuracy {accuracy:.2f} ({time.perf_counter() - t0:.0f} s)")
    model.vision.eval().requires_grad_(False)
    return {"frames": len(x), "baseline_mse": baseline, "history": history}


def pretrain_audio(model, rows: list[dict], samples, epochs: int = 4, batch_size: int = 16, lr: float = 1e-3,
                   seed: int = 0, log=print) -> dict:
    """Regress the prosody parameters and classify the voice's emotion from the corpus's training clips,
    through a linear head on the clip features (the head is discarded)."""
    from train.corpus import EMOTIONS

    classes = list(EMOTIONS)
    torch.manual_seed(seed)
    np.random.seed(seed)  # HuBERT's time masking (transformers' _compute_mask_indices) draws from numpy's global RNG
    prep = model.cfg.preprocessing
    data, skipped = [], 0
    for row, sample in zip(rows, samples):
        try:
            _, clips, _ = load_media(sample, prep)
        except MediaError:  # a broken clip is skipped and counted, as in training
            skipped += 1
            continue
        data.append((torch.from_numpy(clips), torch.from_numpy(prosody_target(row["prosody"])),
                     classes.index(row["voice_emotion"])))
    n_pros = len(PROSODY_KEYS)
    head, _, optimizer = _with_head(model.audio, n_pros + len(classes), lr, weight_decay=0.01)
    model.audio.train()
    history = []
    for epoch in range(epochs):
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        losses, t0 = [], time.perf_counter()
        for i in range(0, len(order), batch_size):
            batch = [data[j] for j in order[i:i + batch_size]]
            clips = torch.stack([b[0] for b in batch])
            features = model.audio(clips.flatten(0, 1)).view(len(batch), clips.shape[1], -1)
            out = head(features[:, 1:]).mean(1)  # the first clip starts with the silence before speech
            mse = nn.functional.mse_loss(out[:, :n_pros], torch.stack([b[1] for b in batch]))
            loss = mse + 0.5 * nn.functional.cross_entropy(out[:, n_pros:], torch.tensor([b[2] for b in batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(mse.detach()))
        history.append({"epoch": epoch + 1, "mse": float(np.mean(losses))})
        log(f"audio epoch {epoch + 1}/{epochs}: prosody mse {np.mean(losses):.4f} ({time.perf_counter() - t0:.0f} s)")
    model.audio.eval().requires_grad_(False)
    return {"clips": len(data), "skipped": skipped, "history": history}


def pretrain_encoders(corpus: Path, out: Path, seed: int = 0, vision_frames: int = 12000, vision_epochs: int = 16,
                      audio_samples: int = 640, audio_epochs: int = 4, log=print, preset: str = "scratch",
                      face_margin: float | None = None) -> dict:
    """The model of `preset` with its encoders pretrained and frozen → OUT/init (a checkpoint), with the encoders as
    local pretrained folders (OUT/encoders) and the pretraining history (OUT/pretrain.json).

    scratch: a tokenizer trained on the corpus, the vision and the audio encoder pretrained here. gemma-270m: the
    GGUF base's vocabulary and the pretrained expression network as they are; only the audio encoder learns here.
    `face_margin`: the face crop's margin in place of the preset's (every later stage reads it from init/)."""
    from train.checkpoint import save_checkpoint
    from train.config import model_config
    from train.corpus import ABSENT
    from train.data import read_jsonl
    from train.model import AffectGPT
    from train.tokenizer import train_tiny_tokenizer

    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
    train_rows = [r for r in rows if r["split"] == "train"]
    out.mkdir(parents=True, exist_ok=True)
    cfg = model_config(preset, seed)
    if face_margin is not None:
        cfg.preprocessing = dataclasses.replace(cfg.preprocessing, face_margin=face_margin)
    if cfg.train_llm:  # an LLM learnt here reads a vocabulary learnt from the same corpus
        text = [r["subtitle"] for r in train_rows] + [r["description"] for r in train_rows]
        tokenizer = train_tiny_tokenizer(1024, text)
        tokenizer.save(str(out / "tokenizer.json"))
        cfg.tokenizer_path = str((out / "tokenizer.json").resolve())
    model = AffectGPT.build(cfg)
    history = {}
    (out / "encoders").mkdir(exist_ok=True)
    if cfg.vision_kind == "clip":
        log(f"pretraining the vision encoder on {vision_frames} rendered frames")
        history["vision"] = pretrain_vision(model, frames=vision_frames, epochs=vision_epochs, seed=seed, log=log)
        model.vision.clip.save_pretrained(out / "encoders" / "vision")
        cfg.vision_path = str((out / "encoders" / "vision").resolve())
    picked = [r for r in train_rows if r["voice_emotion"] != ABSENT][:audio_samples]  # clips where somebody speaks
    log(f"pretraining the audio encoder on {len(picked)} clips")
    samples = {s.name: s for s in read_jsonl(corpus / "train.jsonl")}
    history["audio"] = pretrain_audio(model, picked, [samples[r["name"]] for r in picked], epochs=audio_epochs,
                                      batch_size=16, seed=seed, log=log)
    model.audio.hubert.save_pretrained(out / "encoders" / "audio")
    cfg.audio_path = str((out / "encoders" / "audio").resolve())
    (out / "pretrain.json").write_text(json.dumps(history, indent=2))
    save_checkpoint(model, out / "init")  # last: its presence marks the stage done
    return history


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.pretrain", description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="a corpus folder (python -m train.synth --out)")
    ap.add_argument("--out", required=True, help="folder for init/ (the checkpoint), encoders/, tokenizer.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", **{**preset_argument(CORPUS), "default": "scratch"})
    ap.add_argument("--vision-frames", type=int, default=12000, help="rendered frames the vision encoder learns from")
    ap.add_argument("--vision-epochs", type=int, default=16)
    ap.add_argument("--audio-samples", type=int, default=640, help="training clips the audio encoder learns from")
    ap.add_argument("--audio-epochs", type=int, default=4)
    ap.add_argument("--face-margin", type=float, help="the face crop's margin per side (default: the preset's)")
    args = ap.parse_args(argv)
    corpus = Path(args.corpus)
    if not (corpus / "manifest.jsonl").is_file():
        raise DataError(f"{corpus} is not a corpus: it has no manifest.jsonl")
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    history = pretrain_encoders(corpus, Path(args.out), args.seed, args.vision_frames, args.vision_epochs,
                            args.audio_samples, args.audio_epochs, log, args.preset, args.face_margin)
    print(json.dumps({k: {"final": v["history"][-1] if v.get("history") else None} for k, v in history.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
