"""Output writers for stream results: JSON lines for another process, a readable line for a terminal.

A terminal or pipe whose encoding cannot show a character (a Latin-1 or ASCII locale, `PYTHONIOENCODING=ascii`)
gets a `?` for it: a UnicodeEncodeError is a ValueError, which the record writer would take for a closed output
and end the stream with nothing printed. JSON lines are ASCII already (json.dumps escapes the rest)."""

from __future__ import annotations

import json
import sys
from typing import TextIO


class JsonLines:
    def __init__(self, out: TextIO | None = None):
        self.out = out if out is not None else sys.stdout

    def window(self, record: dict) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def event(self, event: dict) -> None:
        self.window({"event": event})

    def summary(self, summary: dict) -> None:
        self.window({"summary": summary})


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


def _printable(out: TextIO, text: str) -> str:
    """`text` as `out` can encode it: what it cannot becomes `?`."""
    encoding = getattr(out, "encoding", None)
    if not encoding:
        return text
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        return text.encode(encoding, errors="replace").decode(encoding)
    except LookupError:
        return text


class Readable:
    def __init__(self, out: TextIO | None = None):
        self.out = out if out is not None else sys.stdout
        if getattr(self.out, "errors", None) == "strict" and hasattr(self.out, "reconfigure"):
            try:  # also for what else prints a readable line there (--clip's answers)
                self.out.reconfigure(errors="replace")
            except (ValueError, OSError):
                pass

    def window(self, r: dict) -> None:
        if r.get("error") or r.get("skipped"):
            line = f"[{_clock(r['start'])}–{_clock(r['end'])}] skipped: {r.get('error') or r.get('skipped')}"
        else:
            what = ", ".join(r["labels"]) if r["labels"] else r["text"]
            face = "face" if r["face"] else "no face" if r["face"] is False else ""
            line = (f"[{_clock(r['start'])}–{_clock(r['end'])}] {what} ({r['sentiment']})  {face}  "
                    f"{r['timings_ms'].get('window_latency', 0):.0f} ms")
        self.out.write(_printable(self.out, line) + "\n")
        self.out.flush()

    def event(self, e: dict) -> None:
        self.out.write(_printable(self.out, f"[{_clock(e['at'])}] person {e['person']}: {e['kind']} "
                                            f"{e['from'] or '-'} → {e['to']}") + "\n")
        self.out.flush()

    def summary(self, s: dict) -> None:
        self.out.write(_printable(self.out, f"{s['windows']} windows, {s['answered']} answered, {s['dropped']} dropped, "
                                            f"{s['failed']} failed, {s['silent']} silent, "
                                            f"{s['corrupt_packets']} corrupt packets in {s['elapsed_s']:.1f} s\n"))
        self.out.flush()
