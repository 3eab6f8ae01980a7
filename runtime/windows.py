"""Sliding windows over a live stream: timestamped frames and audio in, complete windows out.

Window k covers [k·hop, k·hop + length). Its frames are taken on a global time grid: the frame shown at
start + i·length/num_frames (the last frame at or before that time), which is what the reference's
floor(k·vlen/n) sampling picks at a constant frame rate. Overlapping windows share grid points, so a frame
(and its features, see FeatureCache) is reused rather than encoded again. The audio of a window is its 16 kHz
samples, cut into clips by the shared preprocessing. Memory is bounded: only the frames of grid points that
open windows still need, and only the audio since the oldest open window began.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from runtime.manifest import Preprocessing


@dataclass
class Window:
    index: int
    start: float  # seconds since the stream began
    end: float
    frames: list[np.ndarray]  # num_frames RGB frames [H, W, 3] uint8
    frame_keys: list[int]  # grid time of each frame in milliseconds: the feature-cache key
    waveform: np.ndarray  # [T] float32 mono, the window's audio (may be shorter at the end of a stream)
    audio_offset: int  # absolute sample index of waveform[0]: clip features are cached by it
    has_audio: bool
    partial: bool = False  # flushed at the end of the input before it was full


@dataclass
class _Open:
    index: int
    start: float
    end: float
    points: list[int]  # grid times in ms
    frames: dict[int, np.ndarray] = field(default_factory=dict)


class Windower:
    def __init__(self, prep: Preprocessing, length_s: float, hop_s: float, has_audio: bool):
        if length_s <= 0 or hop_s <= 0:
            raise ValueError("window length and hop must be positive")
        self.prep = prep
        self.length = length_s
        self.hop = hop_s
        self.has_audio = has_audio
        self.step_ms = length_s * 1000 / prep.num_frames
        self.sr = prep.sample_rate
        self._open: list[_Open] = []
        self._next_index = 0
        self._prev: tuple[float, np.ndarray] | None = None
        self._last_frame: np.ndarray | None = None
        self._video_time = 0.0
        self._audio = np.zeros(0, np.float32)
        self._audio_base = 0  # absolute sample index of self._audio[0]
        self._audio_end = 0  # absolute sample index just past the last sample received
        self._emitted_end = 0.0  # end of the last window handed out

    def _schedule(self, until: float) -> None:
        while self._next_index * self.hop <= until:
            k = self._next_index
            start = k * self.hop
            points = [int(round(start * 1000 + i * self.step_ms)) for i in range(self.prep.num_frames)]
            self._open.append(_Open(k, start, start + self.length, points))
            self._next_index += 1

    def add_frame(self, t: float, rgb: np.ndarray) -> list[Window]:
        """A decoded frame shown at `t` seconds. → windows that are now complete."""
        self._schedule(t)
        t_ms = t * 1000
        for w in self._open:
            for p in w.points:
                if p in w.frames:
                    continue
                if p < t_ms:  # the frame on screen at p was the previous one (or this one, if none came before)
                    w.frames[p] = self._prev[1] if self._prev is not None and self._prev[0] * 1000 <= p else rgb
                elif p == round(t_ms):
                    w.frames[p] = rgb
        self._prev = (t, rgb)
        self._last_frame = rgb
        self._video_time = max(self._video_time, t)
        return self._complete()

    def add_audio(self, t: float, samples: np.ndarray) -> list[Window]:
        """Mono samples at the preprocessing rate starting at `t` seconds. → windows now complete."""
        start = int(round(t * self.sr))
        samples = np.asarray(samples, np.float32).reshape(-1)
        if start > self._audio_end:  # a gap (dropped packets): fill with silence to keep time aligned
            samples = np.concatenate([np.zeros(start - self._audio_end, np.float32), samples])
        elif start < self._audio_end:  # overlap: keep only what is new
            samples = samples[self._audio_end - start:]
        self._audio = np.concatenate([self._audio, samples])
        self._audio_end += samples.size
        return self._complete()

    def _audio_slice(self, start: float, end: float) -> tuple[np.ndarray, int]:
        a, b = int(round(start * self.sr)), int(round(end * self.sr))
        lo = max(a - self._audio_base, 0)
        hi = max(min(b, self._audio_end) - self._audio_base, lo)
        return self._audio[lo:hi].copy(), a

    def _emit(self, w: _Open, partial: bool) -> Window:
        frames = [w.frames.get(p, self._last_frame) for p in w.points]
        waveform, offset = self._audio_slice(w.start, w.end) if self.has_audio else (np.zeros(0, np.float32), 0)
        return Window(w.index, w.start, w.end, frames, list(w.points), waveform, offset, self.has_audio, partial)

    def _complete(self) -> list[Window]:
        """Windows whose every grid frame is known and whose audio reaches their end, oldest first."""
        done = []
        while self._open:
            w = self._open[0]
            frames_ready = len(w.frames) == len(w.points)
            audio_ready = not self.has_audio or self._audio_end >= int(round(w.end * self.sr))
            if not (frames_ready and audio_ready):
                break
            done.append(self._emit(self._open.pop(0), partial=False))
            self._emitted_end = done[-1].end
        self._trim_audio()
        return done

    def _trim_audio(self) -> None:
        keep_from = int(round((self._open[0].start if self._open else self._video_time) * self.sr))
        drop = min(max(keep_from - self._audio_base, 0), self._audio.size)
        if drop:
            self._audio = self._audio[drop:]
            self._audio_base += drop

    def flush(self) -> list[Window]:
        """End of input: the oldest window that has begun, filled with what there is — unless the windows
        already out cover the input to its end."""
        begun = [w for w in self._open if w.start <= self._video_time]
        self._open.clear()
        covered = self._emitted_end > 0 and self._emitted_end >= self._video_time
        if self._last_frame is None or not begun or covered:
            return []
        return [self._emit(begun[0], partial=True)]

    @property
    def buffered_frames(self) -> int:
        return len({id(f) for w in self._open for f in w.frames.values()})
