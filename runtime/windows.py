"""Sliding windows over a live stream: timestamped frames and audio in, complete windows out.

Window k covers [k·hop, k·hop + length). Its frames are taken on a global time grid: the frame shown at
start + i·length/num_frames (the last frame at or before that time), which is what the reference's
floor(k·vlen/n) sampling picks at a constant frame rate. Overlapping windows share grid points, so a frame
(and its features, see runtime/encode.py FeatureReuse) is reused rather than encoded again. The audio of a window is its 16 kHz
samples, cut into clips by the shared preprocessing.

When one medium stops (or never starts) while the other flows, windows keep coming: once the leading medium
is `max_lag` seconds past a window's end, the window goes out with what the trailing one gave — missing audio
is silence, a window without any frame is marked `video=False` (its features are zeroed downstream, as the
ablation does). Memory is bounded: only the frames of grid points that open windows still need, only the audio
since the oldest open window began (kept as the chunks it arrived in, never re-concatenated), a gap in the
audio costs no memory, and a timestamp jump schedules no more than the windows around the new time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from runtime.manifest import Preprocessing

TAIL_S = 0.25  # input left after the last window that is not worth a window of its own (e.g. AAC's padding)


@dataclass
class Window:
    index: int
    start: float  # seconds since the stream began
    end: float
    frames: list[np.ndarray]  # num_frames RGB frames [H, W, 3] uint8 (empty when the window has no video)
    frame_keys: list[int]  # grid time of each frame in milliseconds: the feature-cache key
    waveform: np.ndarray  # [T] float32 mono, the window's audio (may be shorter at the end of a stream)
    audio_offset: int  # absolute sample index of waveform[0]: clip features are cached by it
    has_audio: bool  # the window holds audio (false: the input has none, or it stopped)
    partial: bool = False  # flushed at the end of the input before it was full
    has_video: bool = True  # the window holds frames (false: the video stopped or never started)


@dataclass
class _Open:
    index: int
    start: float
    end: float
    points: list[int]  # grid times in ms
    frames: dict[int, np.ndarray] = field(default_factory=dict)


class Windower:
    def __init__(self, prep: Preprocessing, length_s: float, hop_s: float, has_audio: bool, has_video: bool = True,
                 max_lag_s: float | None = None):
        if length_s <= 0 or hop_s <= 0:
            raise ValueError("window length and hop must be positive")
        if not (has_audio or has_video):
            raise ValueError("a stream needs video or audio")
        self.prep = prep
        self.length = length_s
        self.hop = hop_s
        self.has_audio = has_audio
        self.has_video = has_video
        self.max_lag = length_s if max_lag_s is None else max_lag_s  # how far a medium may trail the other
        self.step_ms = length_s * 1000 / prep.num_frames
        self.sr = prep.sample_rate
        self._open: list[_Open] = []
        self._next_index = 0
        self._prev: tuple[float, np.ndarray] | None = None
        self._last_frame: np.ndarray | None = None
        self._video_time = 0.0  # time of the last frame
        self._chunks: deque = deque()  # (absolute start sample, samples or None for silence, length)
        self._audio_end = 0  # absolute sample index just past the last sample received
        self._emitted_end = 0.0  # end of the last window handed out
        self.discontinuities = 0  # timestamp jumps that skipped windows

    @property
    def _audio_time(self) -> float:
        return self._audio_end / self.sr

    def _lead(self) -> float:
        """How far the input has got: the later of the two media."""
        return max(self._video_time if self._last_frame is not None else 0.0, self._audio_time if self.has_audio else 0.0)

    def _schedule(self, until: float) -> None:
        behind = until - self._next_index * self.hop
        if behind > self.length + self.max_lag + 2 * self.hop:  # a jump: no windows for the time it skipped
            self.discontinuities += 1
            self._next_index = max(self._next_index, int((until - self.length) // self.hop))
        while self._next_index * self.hop <= until:
            k = self._next_index
            start = k * self.hop
            points = [int(round(start * 1000 + i * self.step_ms)) for i in range(self.prep.num_frames)]
            self._open.append(_Open(k, start, start + self.length, points))
            self._next_index += 1

    def add_frame(self, t: float, rgb) -> list[Window]:
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
        if start > self._audio_end:  # a gap (dropped packets): silence, which costs no memory
            self._chunks.append((self._audio_end, None, start - self._audio_end))
            self._audio_end = start
        elif start < self._audio_end:  # overlap: keep only what is new
            samples = samples[self._audio_end - start:]
        if samples.size:
            self._chunks.append((self._audio_end, samples, samples.size))
            self._audio_end += samples.size
        self._schedule(self._audio_time)
        return self._complete()

    def _audio_slice(self, start: float, end: float) -> tuple[np.ndarray, int]:
        a, b = int(round(start * self.sr)), int(round(end * self.sr))
        hi = min(b, self._audio_end)
        out = np.zeros(max(hi - a, 0), np.float32)
        for s, samples, n in self._chunks:
            lo, up = max(s, a), min(s + n, hi)
            if samples is not None and lo < up:
                out[lo - a:up - a] = samples[lo - s:up - s]
        return out, a

    def _emit(self, w: _Open, partial: bool) -> Window:
        has_video = self.has_video and bool(w.frames)
        frames = [w.frames.get(p, self._last_frame) for p in w.points] if has_video else []
        has_audio = self.has_audio and self._audio_end > int(round(w.start * self.sr))
        waveform, offset = self._audio_slice(w.start, w.end) if has_audio else (np.zeros(0, np.float32), 0)
        return Window(w.index, w.start, w.end, frames, list(w.points) if has_video else [], waveform, offset,
                      has_audio, partial, has_video)

    def _complete(self) -> list[Window]:
        """Windows whose every grid frame is known and whose audio reaches their end — or whose trailing medium
        is more than max_lag behind — oldest first."""
        done = []
        lead = self._lead()
        while self._open:
            w = self._open[0]
            frames_ready = not self.has_video or len(w.frames) == len(w.points)
            audio_ready = not self.has_audio or self._audio_end >= int(round(w.end * self.sr))
            if not (frames_ready and audio_ready) and lead < w.end + self.max_lag:
                break
            done.append(self._emit(self._open.pop(0), partial=False))
            self._emitted_end = done[-1].end
        self._trim_audio()
        return done

    def _trim_audio(self) -> None:
        keep_from = int(round((self._open[0].start if self._open else self._lead()) * self.sr))
        while self._chunks and self._chunks[0][0] + self._chunks[0][2] <= keep_from:
            self._chunks.popleft()

    def flush(self) -> list[Window]:
        """End of input: every open window the input reached the end of, then the oldest window that has
        begun, filled with what there is — unless the windows already out cover the input to its end."""
        lead = self._lead()
        out = []
        while self._open and self._open[0].end <= lead:
            out.append(self._emit(self._open.pop(0), partial=False))
            self._emitted_end = out[-1].end
        begun = [w for w in self._open if w.start <= lead]
        self._open.clear()
        covered = self._emitted_end > 0 and self._emitted_end >= lead - TAIL_S
        if (self._last_frame is None and not self._audio_end) or not begun or covered:
            return out
        return out + [self._emit(begun[0], partial=True)]

    @property
    def buffered_samples(self) -> int:
        return sum(n for _, samples, n in self._chunks if samples is not None)

    @property
    def buffered_frames(self) -> int:
        return len({id(f) for w in self._open for f in w.frames.values()})
