"""One small stopwatch for stage timings: each `lap` records the milliseconds since the previous one."""

from __future__ import annotations

import time


class Stopwatch:
    def __init__(self, into: dict[str, float] | None = None):
        self.ms: dict[str, float] = {} if into is None else into
        self.started = self._last = time.perf_counter()

    def lap(self, stage: str) -> float:
        """Add the time since the previous lap (or the start) to `stage`; → those milliseconds."""
        now = time.perf_counter()
        ms = (now - self._last) * 1e3
        self.ms[stage] = self.ms.get(stage, 0.0) + ms
        self._last = now
        return ms

    def skip(self) -> None:
        """Start the next lap now: the time since the previous lap belongs to no stage."""
        self._last = time.perf_counter()

    def total_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1e3
