"""Output writers for stream results: JSON lines for another process, a readable line for a terminal."""

from __future__ import annotations

import json
import sys
from typing import TextIO


class JsonLines:
    def __init__(self, out: TextIO = sys.stdout):
        self.out = out

    def window(self, record: dict) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def summary(self, summary: dict) -> None:
        self.window({"summary": summary})


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


class Readable:
    def __init__(self, out: TextIO = sys.stdout):
        self.out = out

    def window(self, r: dict) -> None:
        if r.get("error") or r.get("skipped"):
            line = f"[{_clock(r['start'])}–{_clock(r['end'])}] skipped: {r.get('error') or r.get('skipped')}"
        else:
            what = ", ".join(r["labels"]) if r["labels"] else r["text"]
            face = "face" if r["face"] else "no face" if r["face"] is False else ""
            line = (f"[{_clock(r['start'])}–{_clock(r['end'])}] {what} ({r['sentiment']})  {face}  "
                    f"{r['timings_ms'].get('window_latency', 0):.0f} ms")
        self.out.write(line + "\n")
        self.out.flush()

    def summary(self, s: dict) -> None:
        self.out.write(f"{s['windows']} windows, {s['answered']} answered, {s['dropped']} dropped, "
                       f"{s['failed']} failed, {s['silent']} silent, {s['corrupt_packets']} corrupt packets "
                       f"in {s['elapsed_s']:.1f} s\n")
        self.out.flush()
