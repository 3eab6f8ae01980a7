"""Synthetic talking-face clips: a drawn face whose mouth and brows move, and a voiced tone whose pitch
follows it, written as a real H.264 + AAC mp4 with av.

    python -m train.synth --clip clip.mp4 [--seconds 4] [--seed 0]

Used for smoke runs, tests and as the seed of the synthetic corpus.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def _face_frame(h: int, w: int, t: float, rng_tone: np.ndarray, smile: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = rng_tone[0]  # background
    cx, cy, rx, ry = w / 2, h / 2, w * 0.22, h * 0.36
    face = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
    img[face] = rng_tone[1]  # skin
    open_eye = 0.6 + 0.4 * abs(np.sin(2.1 * t))
    for ex in (cx - rx * 0.4, cx + rx * 0.4):
        eye = ((xx - ex) / (rx * 0.15)) ** 2 + ((yy - (cy - ry * 0.25)) / (ry * 0.07 * open_eye)) ** 2 <= 1
        img[eye] = (30, 30, 40)
        brow_y = cy - ry * (0.45 + 0.08 * np.sin(1.3 * t))
        brow = (abs(xx - ex) < rx * 0.2) & (abs(yy - brow_y) < max(1.0, h * 0.01))
        img[brow] = (60, 40, 30)
    mouth_x = (xx - cx) / (rx * 0.5)
    curve = cy + ry * 0.45 - smile * ry * 0.15 * (1 - mouth_x**2)
    opening = ry * 0.05 * (1 + np.sin(9 * t) ** 2)
    mouth = (abs(mouth_x) <= 1) & (yy > curve - opening) & (yy < curve + opening)
    img[mouth] = (150, 40, 50)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_clip(path: str | Path, seconds: float = 4.0, fps: int = 15, size: tuple[int, int] = (160, 120),
               seed: int = 0, audio: bool = True, sample_rate: int = 16000, gop: int = 0,
               waveform: np.ndarray | None = None, smile: float | None = None, pitch: float | None = None) -> Path:
    """Write an H.264 (+ AAC when `audio`) file of a synthetic speaking face (container from the suffix:
    .mp4, .ts, .mkv ...). `gop` > 0 puts a keyframe every `gop` frames (streams joined mid-way). `waveform`
    (16 kHz mono) replaces the synthetic voice, e.g. real speech. → the path."""
    rng = np.random.default_rng(seed)
    w, h = size
    tone = rng.uniform(40, 220, size=(2, 3))
    smile = rng.uniform(-1, 1) if smile is None else smile
    pitch = rng.uniform(110, 240) if pitch is None else pitch
    path = Path(path)
    with av.open(str(path), "w") as out:
        vstream = out.add_stream("libx264", rate=fps)
        vstream.width, vstream.height, vstream.pix_fmt = w, h, "yuv420p"
        vstream.options = {"preset": "ultrafast"}
        if gop:
            vstream.codec_context.gop_size = gop
        astream = out.add_stream("aac", rate=sample_rate) if audio else None
        if astream is not None:
            astream.layout = "mono"
        n_frames = int(round(seconds * fps))
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(_face_frame(h, w, i / fps, tone, smile), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(vstream.encode(frame))
        out.mux(vstream.encode(None))
        if astream is not None:
            t = np.arange(int(seconds * sample_rate)) / sample_rate
            f0 = pitch * (1 + 0.15 * np.sin(2 * np.pi * 0.7 * t) * smile)
            phase = 2 * np.pi * np.cumsum(f0) / sample_rate
            voice = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
            wave = (0.2 * voice + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
            if waveform is not None:
                wave = np.zeros(t.size, np.float32)
                wave[: min(t.size, waveform.size)] = waveform[: t.size]
            block = 1024
            for start in range(0, wave.size, block):
                chunk = wave[start : start + block][None]
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = start
                frame.time_base = Fraction(1, sample_rate)
                out.mux(astream.encode(frame))
            out.mux(astream.encode(None))
    return path


# emotion → (mouth-corner pull, voice pitch in Hz, words that describe it)
EMOTIONS = {
    "happy": (0.9, 230, ["happy", "joyful"]), "excited": (0.7, 260, ["excited", "happy"]),
    "calm": (0.2, 140, ["calm", "relaxed"]), "sad": (-0.8, 110, ["sad", "disappointed"]),
    "angry": (-0.6, 180, ["angry", "frustrated"]), "worried": (-0.4, 200, ["worried", "anxious"]),
}
SUBTITLES = ["I did not expect that at all.", "We need to talk about what happened.", "Well, here we are again.",
             "Can you believe this?", "It is fine, really.", "Let me think about it."]


def write_corpus(out: str | Path, n: int, seed: int = 0, seconds: float = 3.0) -> Path:
    """n labelled clips in both layouts training reads: manifest.jsonl and MER-Caption CSVs. → the folder."""
    import csv
    import json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = list(EMOTIONS)
    rows = []
    for i in range(n):
        emotion = names[int(rng.integers(len(names)))]
        smile, pitch, words = EMOTIONS[emotion]
        name = f"clip{i:04d}"
        subtitle = SUBTITLES[int(rng.integers(len(SUBTITLES)))]
        write_clip(out / f"{name}.mp4", seconds=seconds, seed=seed * 100003 + i, smile=smile + rng.normal(0, 0.1),
                   pitch=pitch * rng.uniform(0.9, 1.1))
        voice = "high and lively" if pitch > 200 else "low and slow" if pitch < 130 else "steady"
        face = "smiles" if smile > 0.3 else "frowns" if smile < -0.3 else "looks relaxed"
        description = (f"The person {face} and the voice is {voice}. The subtitle says: {subtitle} "
                       f"Together this suggests the character feels {words[0]}.")
        rows.append({"name": name, "path": f"{name}.mp4", "subtitle": subtitle, "labels": words,
                     "description": description})
    with open(out / "manifest.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    for file, header, get in (("labels.csv", ("name", "openset"), lambda r: "[" + ", ".join(r["labels"]) + "]"),
                              ("reasons.csv", ("name", "reason"), lambda r: r["description"]),
                              ("subtitles.csv", ("name", "english"), lambda r: r["subtitle"])):
        with open(out / file, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows((r["name"], get(r)) for r in rows)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.synth", description=__doc__.split("\n\n")[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--clip", metavar="FILE", help="one clip to write")
    what.add_argument("--out", metavar="DIR", help="a labelled corpus of --n clips")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-audio", action="store_true")
    args = ap.parse_args(argv)
    if args.clip:
        print(write_clip(args.clip, args.seconds or 4.0, seed=args.seed, audio=not args.no_audio))
    else:
        print(write_corpus(args.out, args.n, args.seed, args.seconds or 3.0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
