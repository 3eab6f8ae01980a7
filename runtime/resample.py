"""Audio resampling that follows the input's format, layout and rate when they change mid-stream."""

from __future__ import annotations

import av


class Resampler:
    """Resamples frames to one `format` and `rate` (and `layout`; None keeps each frame's own layout).

    An av resampler is set up for the first input it sees and refuses a frame of another
    format, layout or rate (a broadcast TS that switches stereo to 5.1), so a frame whose (format, layout, rate)
    differs from the last one's gets a new one; `changes` counts those switches.
    """

    def __init__(self, format: str, layout: str | None, rate: int):
        self.format, self.layout, self.rate = format, layout, rate
        self.changes = 0
        self._key = None
        self._resampler = None

    def follow(self, frame) -> bool:
        """Ready for `frame`'s format: True when that is a change from the previous frame's."""
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if key == self._key:
            return False
        changed = self._key is not None
        self.changes += changed
        self._resampler = av.AudioResampler(format=self.format, layout=self.layout or frame.layout.name, rate=self.rate)
        self._key = key
        return changed

    def resample(self, frame) -> list:
        self.follow(frame)
        return self._resampler.resample(frame)

    def flush(self) -> list:
        """What the current resampler still holds (nothing before the first frame)."""
        return self._resampler.resample(None) if self._resampler is not None else []
