"""Synthetic talking-face clips: a drawn face whose mouth and brows move, and a voiced tone whose pitch
follows it, written as a real H.264 + AAC mp4 with av.

    python -m train.synth --clip clip.mp4 [--seconds 4] [--seed 0]
    python -m train.synth --out corpus/ --n 2000 --seed 0        # the labelled corpus (train/corpus.py)

Used for smoke runs, tests and as the seed of the synthetic corpus.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from runtime.errors import run_cli


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


def write_media(path: str | Path, frames=(), audio: np.ndarray | None = None, *, fps: int = 15,
                sample_rate: int = 16000, frame_times=None, clock=None, codec: str = "libx264",
                pix_fmt: str = "yuv420p", options: dict | None = None, gop: int = 0, rotate: int | None = None,
                container: str | None = None) -> Path:
    """Encode pictures and sound into one media file, muxed in time order as a camera or a recorder interleaves them.

    frames: [H, W, 3] uint8 RGB pictures (H.264 unless `codec` says otherwise), shown at `frame_times` seconds
    (default i / fps); audio: [samples] or [channels, samples] float32 at `sample_rate` (AAC; 1 channel: mono,
    2: stereo); clock: seconds → the timestamp written (an offset, a jump); container: the format, by default
    from the suffix (.mp4, .ts, .mkv ...). `gop` > 0 puts a keyframe every `gop` frames. → the path."""
    frames = list(frames)
    times = list(frame_times) if frame_times is not None else [i / fps for i in range(len(frames))]
    clock = clock or (lambda t: t)
    wave = None if audio is None else np.atleast_2d(np.asarray(audio, np.float32))
    path = Path(path)
    with av.open(str(path), "w", format=container) as out:
        items = []  # (seconds, stream, data), muxed in time order
        video = sound = None
        if frames:
            video = out.add_stream(codec, rate=fps)
            video.height, video.width = frames[0].shape[:2]
            video.pix_fmt = pix_fmt
            video.codec_context.time_base = Fraction(1, 90000)  # a fine clock: frames may come at any time
            video.options = dict(options or {})
            if gop:
                video.codec_context.gop_size = gop
            if rotate is not None:
                video.metadata["rotate"] = str(rotate)
            items += [(t, video, f) for t, f in zip(times, frames)]
        if wave is not None and wave.size:
            sound = out.add_stream("aac", rate=sample_rate)
            sound.layout = "stereo" if len(wave) == 2 else "mono"
            items += [(s / sample_rate, sound, wave[:, s:s + 1024]) for s in range(0, wave.shape[1], 1024)]
        for t, stream, data in sorted(items, key=lambda item: item[0]):
            if stream is video:
                frame = av.VideoFrame.from_ndarray(data, format="rgb24")
                frame.pts, frame.time_base = int(round(clock(t) * 90000)), Fraction(1, 90000)
            else:  # packed float: channels interleaved in one plane
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data.T).reshape(1, -1), format="flt",
                                                   layout=stream.layout.name)
                frame.sample_rate = sample_rate
                frame.pts, frame.time_base = int(round(clock(t) * sample_rate)), Fraction(1, sample_rate)
            out.mux(stream.encode(frame))
        for stream in (video, sound):
            if stream is not None:
                out.mux(stream.encode(None))
    return path


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
    frames = [_face_frame(h, w, i / fps, tone, smile) for i in range(int(round(seconds * fps)))]
    wave = None
    if audio:
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        f0 = pitch * (1 + 0.15 * np.sin(2 * np.pi * 0.7 * t) * smile)
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate
        voice = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
        wave = (0.2 * voice + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
        if waveform is not None:
            wave = np.zeros(t.size, np.float32)
            wave[: min(t.size, waveform.size)] = waveform[: t.size]
    return write_media(path, frames, wave, fps=fps, sample_rate=sample_rate, options={"preset": "ultrafast"}, gop=gop)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.synth", description=__doc__.split("\n\n")[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--clip", metavar="FILE", help="one clip to write")
    what.add_argument("--out", metavar="DIR", help="a labelled MER-Caption-style corpus of --n clips (train/corpus.py)")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=4.0, help="length of the --clip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-audio", action="store_true")
    args = ap.parse_args(argv)
    if args.clip:
        print(write_clip(args.clip, args.seconds, seed=args.seed, audio=not args.no_audio))
    else:
        from train.corpus import write_corpus

        print(write_corpus(args.out, args.n, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
