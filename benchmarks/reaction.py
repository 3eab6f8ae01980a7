"""Reaction time: from a change of expression in a clip to the first record that reflects it.

    python -m benchmarks.reaction --out results/reaction             # the embedded default, three settings

The clip is two of the shipped samples joined (sad, then happy; each looped to --seconds), so the expression
changes at a known media time T. For each setting the stream answers the clip as a file and, from its records:

- first answer: the first window whose own sentiment is the new one (positive), its end minus T — how long the
  window must see the new face — plus that window's latency;
- held state: the first window whose held sentiment (`affect`, after --hold windows) is the new one, the same
  way; the change event goes out with that window;
- smoothed valence: the first window whose smoothed valence is above zero (the new face is the pleasant one).

The stream reads the clip at 1x speed (--realtime), so each latency is what a live input would see.

Media time stands in for the wall clock: a live stream hands a window over at its end, and it is answered one
window latency later, so end − T + latency is the reaction a viewer of the live stream would see.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from benchmarks.report import cpu_name, write_report
from runtime.errors import run_cli

SAMPLES = Path(__file__).resolve().parents[1] / "runtime" / "demo" / "samples"
SETTINGS = (  # (name, window s, hop s, smooth s, hold windows)
    ("4 s / 2 s, no smoothing, hold 1", 4.0, 2.0, 0.0, 1),
    ("4 s / 2 s, defaults (smooth 2 s, hold 2)", 4.0, 2.0, 2.0, 2),
    ("4 s / 2 s, smooth 4 s, hold 2", 4.0, 2.0, 4.0, 2),
    ("4 s / 1 s, no smoothing, hold 1", 4.0, 1.0, 0.0, 1),
    ("4 s / 1 s, smooth 2 s, hold 2", 4.0, 1.0, 2.0, 2),
    ("2 s / 1 s, no smoothing, hold 1", 2.0, 1.0, 0.0, 1),
)


def _decoded(path: Path):
    """→ (frames [H, W, 3] uint8 RGB, fps, audio [samples] float32 at 16 kHz mono)."""
    with av.open(str(path)) as src:
        fps = float(src.streams.video[0].average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    with av.open(str(path)) as src:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        chunks = [r.to_ndarray().reshape(-1) for f in src.decode(audio=0) for r in resampler.resample(f)]
    return frames, fps, np.concatenate(chunks).astype(np.float32)


def make_change_clip(out: str | Path, first: str = "sad", then: str = "happy", seconds: float = 10.0) -> float:
    """Write `first`'s sample looped to `seconds`, then `then`'s looped to `seconds`, as one mp4 (H.264 + AAC,
    16 kHz mono). → the media time of the change, in seconds."""
    parts = [_decoded(SAMPLES / f"{name}.mp4") for name in (first, then)]
    fps = parts[0][1]
    n = int(round(seconds * fps))
    frames, audio = [], []
    for pictures, _, wave in parts:
        frames += [pictures[i % len(pictures)] for i in range(n)]
        audio.append(np.resize(wave, int(round(n / fps * 16000))))
    h, w = frames[0].shape[:2]
    with av.open(str(out), "w") as dst:
        video = dst.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        video.width, video.height, video.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        sound = dst.add_stream("aac", rate=16000)
        sound.layout = "mono"
        for picture in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture[: video.height, : video.width]), "rgb24")
            dst.mux(video.encode(frame))
        dst.mux(video.encode())
        wave = np.concatenate(audio)
        for i in range(0, len(wave), 1024):
            chunk = av.AudioFrame.from_ndarray(wave[None, i:i + 1024], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 16000, i
            dst.mux(sound.encode(chunk))
        dst.mux(sound.encode())
    return n / fps


def reaction(records: list[dict], change_s: float, new: str) -> dict:
    """The first window (ending after the change) whose own sentiment is `new`, whose held sentiment is, and whose
    smoothed valence is above zero."""
    out = {}
    for key, reflects in (("first_answer", lambda r: r.get("sentiment") == new),
                          ("held_state", lambda r: (r.get("affect") or {}).get("sentiment") == new),
                          ("smoothed_valence", lambda r: (r.get("affect") or {})["smoothed"]["valence"] > 0)):
        hit = next((r for r in records if r["end"] > change_s and "labels" in r and not r.get("error")
                    and reflects(r)), None)
        if hit is None:
            out[key] = None
            continue
        latency = hit["timings_ms"].get("window_latency", 0.0) / 1000
        out[key] = {"window": hit["window"], "start": hit["start"], "end": hit["end"],
                    "media_s": round(hit["end"] - change_s, 2), "latency_s": round(latency, 3),
                    "reaction_s": round(hit["end"] - change_s + latency, 2)}
    return out


def run(clip: Path, change_s: float, bundle: str | None, threads: int | None, new: str) -> list[dict]:
    from runtime.api import Stream, open_bundle

    pipeline = open_bundle(bundle, threads=threads)
    rows = []
    try:
        for name, window, hop, smooth, hold in SETTINGS:
            stream = Stream(str(clip), pipeline=pipeline, window_s=window, hop_s=hop, smooth=smooth, hold=hold,
                            threads=threads, vad="off", realtime=True)
            records = [asdict(answer) for answer in stream]
            rows.append({"setting": name, "window_s": window, "hop_s": hop, "smooth_s": smooth, "hold": hold,
                         **reaction(records, change_s, new),
                         "labels": [(r["start"], r["end"], r.get("labels")) for r in records]})
    finally:
        pipeline.close()
    return rows


def table(rows: list[dict], change_s: float, cpu: str) -> str:
    def cell(x):
        return "never" if x is None else (f"{x['reaction_s']:.1f} s = {x['media_s']:g} + {x['latency_s']:.1f} "
                                          f"(window {x['start']:g}–{x['end']:g} s)")

    lines = [f"Reaction to sad → happy at {change_s:.1f} s, the embedded default on {cpu}: seconds after the change "
             "= window end after it + that window's latency", "",
             "| setting | first answer that shows it | held sentiment (event) | smoothed valence > 0 |",
             "|---|---|---|---|"]
    lines += [f"| {r['setting']} | {cell(r['first_answer'])} | {cell(r['held_state'])} | "
              f"{cell(r['smoothed_valence'])} |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.reaction", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default=None, help="bundle folder (default: the embedded default)")
    ap.add_argument("--seconds", type=float, default=12.0, help="length of each half of the clip (default 12)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default="results/reaction", help="folder for reaction.json and reaction.md")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clip = out / "sad-then-happy.mp4"
    change_s = make_change_clip(clip, seconds=args.seconds)
    rows = run(clip, change_s, args.bundle, args.threads, new="positive")
    cpu = cpu_name()
    load = os.getloadavg()  # latencies depend on what else runs: say how busy the machine was
    text = table(rows, change_s, cpu) + f"\n\nload average at the end: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min)"
    write_report(out, "reaction", {"cpu": cpu, "change_s": change_s, "clip": str(clip), "load_average": load,
                                   "rows": rows}, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
