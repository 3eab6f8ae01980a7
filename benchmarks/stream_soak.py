"""Soak test of the streaming runtime: a looped file at full speed for N windows; resident memory, open file
descriptors and threads sampled as it goes (each must stay flat within its bound), the per-stage profile, and
whether the pipeline keeps up with real time (processing time per window vs hop).

    python -m benchmarks.stream_soak --windows 5000 --vad mark --face-crop --out results/soak   # the default bundle
    python -m benchmarks.stream_soak --bundle bundles/tiny --windows 1000 --out results/soak
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from benchmarks.report import write_report
from runtime.errors import run_cli


# Flat means: after the first tenth of the run (caches, arenas and thread pools settle), the highest value of the
# last third of the samples exceeds the highest of the first third by no more than this. (Threads and descriptors
# come and go as the looped file is reopened and its decoder threads start and stop; they must not accumulate.)
BOUNDS = {"rss_mb": 20.0, "fds": 0, "threads": 0}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def threads() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return threading.active_count()


class RecordingWriter:
    """Keeps nothing but counts and samples, so the soak itself does not grow."""

    def __init__(self, every: int):
        self.every = every
        self.samples: list[dict] = []
        self.n = 0

    def window(self, record: dict) -> None:
        self.n += 1
        if self.n == 1 or self.n % self.every == 0:
            self.samples.append({"windows": self.n, "rss_mb": round(rss_mb(), 1), "fds": open_fds(), "threads": threads()})

    def summary(self, summary: dict) -> None:
        pass


def flatness(samples: list[dict]) -> dict:
    """Per quantity: min / max after the first tenth, the growth of the maximum from the first third to the last
    third, and whether that growth is within bound."""
    settled = samples[max(1, len(samples) // 10):] or samples
    third = max(1, len(settled) // 3)
    out = {}
    for key, bound in BOUNDS.items():
        values = [x[key] for x in settled]
        growth = max(values[-third:]) - max(values[:third])
        out[key] = {"min": min(values), "max": max(values), "growth": round(growth, 1), "bound": bound,
                    "flat": growth <= bound}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.stream_soak", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--bundle", help="bundle folder (default: the shipped demo)")
    ap.add_argument("--video", help="input file (default: a synthetic 12 s talking-face clip)")
    ap.add_argument("--windows", type=int, default=1000)
    ap.add_argument("--window", type=float, default=4.0)
    ap.add_argument("--hop", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--vad", choices=("off", "mark", "skip"), default="off", help="the voice-activity stage (silero-vad)")
    ap.add_argument("--face-crop", action="store_true", help="the face detector on every new frame")
    ap.add_argument("--samples", type=int, default=50, help="how many times RSS / fds / threads are sampled")
    ap.add_argument("--precision", help="encoder variant (default: the bundle's)")
    ap.add_argument("--llm-variant", help="GGUF variant (default: the bundle's)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from runtime.pipeline import Pipeline, RuntimeOptions
    from runtime.sources import media_file
    from runtime.stream import Stream, StreamOptions
    from runtime.api import DEMO_BUNDLE

    bundle = args.bundle or str(DEMO_BUNDLE)
    video = args.video
    if video is None:
        from train.synth import write_clip

        scratch = Path(tempfile.mkdtemp(prefix="affectgpt-soak-"))
        atexit.register(shutil.rmtree, scratch, True)
        video = str(write_clip(scratch / "soak.mp4", seconds=12.0, seed=11))
    pipeline = Pipeline(bundle, RuntimeOptions(threads=args.threads, encoder_variant=args.precision,
                                               llm_variant=args.llm_variant, verify_hashes=False))
    writer = RecordingWriter(every=max(1, args.windows // args.samples))
    before = rss_mb()
    stream = Stream(pipeline, [media_file(video, loop=True)],
                    StreamOptions(window_s=args.window, hop_s=args.hop, max_windows=args.windows, vad=args.vad,
                                  face_crop=True if args.face_crop else None), writer)
    summary = stream.run()
    stream.records.close()
    after = rss_mb()
    profile = stream.profile.summary()
    per_window_ms = 1e3 * summary["elapsed_s"] / max(summary["answered"], 1)
    flat = flatness(writer.samples)
    result = {"bundle": bundle, "video": video, "window_s": args.window, "hop_s": args.hop, "vad": args.vad,
              "face_crop": args.face_crop, "rss_mb_before": before, "rss_mb_after": after, "samples": writer.samples,
              "flatness": flat, "summary": summary, "profile": profile, "processing_ms_per_window": per_window_ms,
              "keeps_up_in_real_time": per_window_ms < args.hop * 1e3}
    step = max(1, len(writer.samples) // 10)
    lines = ["| windows answered | RSS MB | open fds | threads |", "|---|---|---|---|"]
    lines += [f"| {x['windows']} | {x['rss_mb']:.1f} | {x['fds']} | {x['threads']} |" for x in writer.samples[::step]]
    lines += ["", "| after the first tenth | min | max | growth of the max, first → last third | bound | flat |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {k} | {v['min']} | {v['max']} | {v['growth']} | {v['bound']} | {'yes' if v['flat'] else 'NO'} |"
              for k, v in flat.items()]
    lines += ["", f"RSS before {before:.1f} MB, after {after:.1f} MB; {summary['answered']} windows in "
              f"{summary['elapsed_s']:.1f} s = {per_window_ms:.1f} ms per window against a {args.hop:.1f} s hop "
              f"({'keeps up' if result['keeps_up_in_real_time'] else 'falls behind'}); VAD {args.vad}, face crops "
              f"{'on' if args.face_crop else 'off'}", "",
              "```", stream.profile.table(summary["windows_per_s"], summary["dropped"]), "```"]
    print(write_report(args.out, "soak", result, "\n".join(lines)))
    pipeline.close()
    return 0 if all(v["flat"] for v in flat.values()) else 1


if __name__ == "__main__":
    sys.exit(run_cli(main))
