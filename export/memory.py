"""Peak memory of this process, told apart: anonymous pages (what the process itself holds) and the resident peak.

ru_maxrss / VmHWM count every resident page, file-backed ones too: a memory-mapped model read through once counts in
full although the kernel can drop those pages at any time. The kernel keeps no peak of the anonymous part alone, so a
thread samples RssAnon from /proc/self/status.
"""

from __future__ import annotations

import threading
from pathlib import Path

STATUS = Path("/proc/self/status")


def status_mb(field: str) -> float:
    """A kB field of /proc/self/status in MB (0 where the system has none)."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class AnonPeak:
    """`with AnonPeak() as peak: ...` then peak.mb: the largest RssAnon seen, sampled every `interval` seconds."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.mb = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.mb = max(self.mb, status_mb("RssAnon"))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "AnonPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.mb = max(self.mb, status_mb("RssAnon"))
