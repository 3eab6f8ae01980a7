"""Soak test of the streaming runtime: a looped file for N windows; memory (RSS) sampled as it goes, the
per-stage profile, and whether the pipeline keeps up with real time (processing time per window vs hop).

    python -m benchmarks.stream_soak --bundle bundles/tiny --windows 1000 --out results/soak
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RecordingWriter:
    """Keeps nothing but counts and RSS samples, so the soak itself does not grow."""

    def __init__(self, every: int):
        self.every = every
        self.samples: list[tuple[int, float]] = []
        self.n = 0

    def window(self, record: dict) -> None:
        self.n += 1
        if self.n == 1 or self.n % self.every == 0:
            self.samples.append((self.n, rss_mb()))

    def summary(self, summary: dict) -> None:
        pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.stream_soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--video", help="input file (default: a synthetic 12 s talking-face clip)")
    ap.add_argument("--windows", type=int, default=1000)
    ap.add_argument("--window", type=float, default=4.0)
    ap.add_argument("--hop", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from runtime.stream import Stream, StreamOptions
    from runtime.pipeline import Pipeline, RuntimeOptions
    from runtime.sources import media_file

    video = args.video
    if video is None:
        from train.synth import write_clip

        video = str(write_clip(Path(tempfile.mkdtemp()) / "soak.mp4", seconds=12.0, seed=11))
    pipeline = Pipeline(args.bundle, RuntimeOptions(threads=args.threads))
    writer = RecordingWriter(every=max(1, args.windows // 10))
    before = rss_mb()
    stream = Stream(pipeline, [media_file(video, loop=True)],
                    StreamOptions(window_s=args.window, hop_s=args.hop, max_windows=args.windows), writer)
    summary = stream.run()
    after = rss_mb()
    profile = stream.profile.summary()
    per_window_ms = 1e3 * summary["elapsed_s"] / max(summary["answered"], 1)
    result = {"bundle": args.bundle, "video": video, "window_s": args.window, "hop_s": args.hop,
              "rss_mb_before": before, "rss_mb_after": after, "rss_samples": writer.samples, "summary": summary,
              "profile": profile, "processing_ms_per_window": per_window_ms,
              "keeps_up_in_real_time": per_window_ms < args.hop * 1e3}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(result, indent=2))
    lines = ["| windows answered | RSS MB |", "|---|---|"] + [f"| {n} | {mb:.1f} |" for n, mb in writer.samples]
    lines += ["", f"RSS before {before:.1f} MB, after {after:.1f} MB; {summary['answered']} windows in "
              f"{summary['elapsed_s']:.1f} s = {per_window_ms:.1f} ms per window against a {args.hop:.1f} s hop "
              f"({'keeps up' if result['keeps_up_in_real_time'] else 'falls behind'})", "",
              "```", stream.profile.table(summary["windows_per_s"], summary["dropped"]), "```"]
    text = "\n".join(lines)
    (out / "soak.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
