"""Per-stage latency statistics of a stream and their table (trtexec style: p50 / p95 / p99), over the most
recent 10,000 windows."""

from __future__ import annotations

from collections import defaultdict, deque

import numpy as np

STAGE_ORDER = ("capture_to_ready", "face", "preprocess", "vision", "audio", "fusion", "llm_prefill",
               "time_to_first_token", "llm_decode", "window_latency")


RECENT = 10_000  # windows whose timings the percentiles are taken over: memory stays flat however long it runs


class Profile:
    def __init__(self):
        self.stages: dict[str, deque] = defaultdict(lambda: deque(maxlen=RECENT))
        self.counts: dict[str, int] = defaultdict(int)
        self.tokens = 0
        self.decode_ms = 0.0

    def add(self, timings_ms: dict[str, float], new_tokens: int = 0) -> None:
        for stage, ms in timings_ms.items():
            self.stages[stage].append(float(ms))
            self.counts[stage] += 1
        self.tokens += new_tokens
        self.decode_ms += timings_ms.get("llm_decode", 0.0)

    def summary(self) -> dict:
        out = {}
        for stage in sorted(self.stages, key=lambda s: (STAGE_ORDER.index(s) if s in STAGE_ORDER else 99, s)):
            values = np.asarray(self.stages[stage])
            out[stage] = {"n": self.counts[stage], "mean": float(values.mean()),
                          **{f"p{q}": float(np.percentile(values, q)) for q in (50, 95, 99)}}
        out["decode_tokens_per_s"] = self.tokens / (self.decode_ms / 1e3) if self.decode_ms > 0 else 0.0
        return out

    def table(self, windows_per_s: float, dropped: int) -> str:
        s = self.summary()
        rows = [f"{'stage':<22}{'n':>6}{'mean ms':>10}{'p50':>10}{'p95':>10}{'p99':>10}"]
        for stage, v in s.items():
            if isinstance(v, dict):
                rows.append(f"{stage:<22}{v['n']:>6}{v['mean']:>10.2f}{v['p50']:>10.2f}{v['p95']:>10.2f}{v['p99']:>10.2f}")
        rows.append(f"decode tokens/s {s['decode_tokens_per_s']:.1f} · windows/s {windows_per_s:.2f} · dropped {dropped}")
        return "\n".join(rows)
