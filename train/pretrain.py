"""Pretraining the small encoders of the demo on the synthetic corpus, where no pretrained CLIP / HuBERT
weights can be had: the vision encoder learns to read the expression parameters off the frames, the audio
encoder the prosody parameters off the voice. Then they are frozen, as the paper freezes its encoders.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from train.data import load_media

EXPRESSION_KEYS = ("smile", "brow_raise", "brow_lower", "brow_knit", "eye_open", "mouth_open", "nod", "shake")
PROSODY_KEYS = ("pitch", "range", "rate", "loudness", "tremor", "pauses")
PROSODY_SCALE = {"pitch": 100, "rate": 200, "loudness": 200, "pauses": 2}


def expression_target(row: dict) -> np.ndarray:
    e = row["expression"]
    return np.array([e.get(k, 1.0 if k == "eye_open" else 0.0) - (1.0 if k == "eye_open" else 0.0)
                     for k in EXPRESSION_KEYS], np.float32)


def prosody_target(row: dict) -> np.ndarray:
    p = row["prosody"]
    return np.array([p[k] / PROSODY_SCALE.get(k, 1) for k in PROSODY_KEYS], np.float32)


def pretrain_encoders(model, rows: list[dict], samples, epochs: int = 6, batch_size: int = 8, lr: float = 1e-3,
                      seed: int = 0, log=print) -> dict:
    """Regress expression / prosody parameters and classify the face's / the voice's emotion, through small
    heads on top of the encoders (the heads are discarded)."""
    from train.corpus import EMOTIONS

    classes = list(EMOTIONS)
    torch.manual_seed(seed)
    prep = model.cfg.preprocessing
    data = []
    for row, sample in zip(rows, samples):
        try:
            pixels, clips = load_media(sample, prep)
        except Exception:  # noqa: BLE001 - a broken clip is skipped, as in training
            continue
        data.append((torch.from_numpy(pixels), torch.from_numpy(clips), torch.from_numpy(expression_target(row)),
                     torch.from_numpy(prosody_target(row)), classes.index(row["face_emotion"]),
                     classes.index(row["voice_emotion"])))
    vision_head = nn.Linear(model.vision.dim, len(EXPRESSION_KEYS) + len(classes))
    audio_head = nn.Linear(model.audio.dim, len(PROSODY_KEYS) + len(classes))
    n_expr, n_pros = len(EXPRESSION_KEYS), len(PROSODY_KEYS)
    params = list(model.vision.parameters()) + list(model.audio.parameters()) + list(vision_head.parameters()) \
        + list(audio_head.parameters())
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    model.vision.train()
    model.audio.train()
    history = []
    for epoch in range(epochs):
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        losses, t0 = [], time.perf_counter()
        for i in range(0, len(order), batch_size):
            batch = [data[j] for j in order[i:i + batch_size]]
            pixels = torch.stack([b[0] for b in batch])
            clips = torch.stack([b[1] for b in batch])
            face, audio = model.features(pixels, clips)
            # the last frames and clips hold the full expression (it builds up over the first half second)
            v_out, a_out = vision_head(face[:, 2:]).mean(1), audio_head(audio[:, 1:]).mean(1)
            v_loss = nn.functional.mse_loss(v_out[:, :n_expr], torch.stack([b[2] for b in batch]))
            a_loss = nn.functional.mse_loss(a_out[:, :n_pros], torch.stack([b[3] for b in batch]))
            v_cls = nn.functional.cross_entropy(v_out[:, n_expr:], torch.tensor([b[4] for b in batch]))
            a_cls = nn.functional.cross_entropy(a_out[:, n_pros:], torch.tensor([b[5] for b in batch]))
            loss = v_loss + a_loss + 0.5 * (v_cls + a_cls)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append((float(v_loss.detach()), float(a_loss.detach())))
        v, a = np.mean(losses, axis=0)
        history.append({"epoch": epoch + 1, "vision_mse": float(v), "audio_mse": float(a)})
        log(f"pretrain epoch {epoch + 1}/{epochs}: expression mse {v:.4f}, prosody mse {a:.4f} "
            f"({time.perf_counter() - t0:.0f} s)")
    model.vision.eval().requires_grad_(False)
    model.audio.eval().requires_grad_(False)
    return {"history": history, "samples": len(data)}
