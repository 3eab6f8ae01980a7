"""Streaming: readers → windows → encoders → LLM, each stage a thread, joined by bounded queues.
(`python -m runtime.stream` is its command line: runtime/stream/__main__.py.)

When the LLM falls behind a live source, the stalest waiting windows are dropped and counted, so latency
and memory stay flat; a file is read no faster than it is answered (nothing dropped) unless it is paced
in real time. Features of frames and audio clips shared by overlapping windows are computed once.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import av
import numpy as np

from runtime.encode import crop_faces, face_detector
from runtime.pipeline import Pipeline
from runtime.preprocess import cut_clips, normalize_clips, pixel_values
from runtime.profile import Profile
from runtime.sentiment import sentiment
from runtime.sources import Reader, SourceSpec
from runtime.task import TASKS, Task
from runtime.timing import Stopwatch
from runtime.windows import Window, Windower

_END = object()


@dataclass(frozen=True)
class StreamOptions:
    window_s: float = 4.0
    hop_s: float = 2.0
    task: Task = TASKS["labels"]  # runtime/task.py: question, grammar and token budget
    subtitle: str = ""
    face_crop: bool | None = None  # None: as the bundle's preprocessing says
    queue_size: int = 2
    drop: bool | None = None  # None: drop when any input is live
    max_windows: int | None = None
    reuse_features: bool = True
    warmup: bool = True
    vad: str = "off"  # "mark": say whether a window holds speech; "skip": also leave silent windows unanswered
    asr: bool = False  # subtitles from the window's audio (overrides `subtitle`)
    threads: int = 1  # for the speech stages


class FeatureCache:
    """Frame features by grid time (ms) and audio-clip features by absolute start sample."""

    def __init__(self):
        self.frames: dict[int, tuple[np.ndarray, bool]] = {}
        self.clips: dict[tuple[int, ...], np.ndarray] = {}

    def evict_before(self, ms: int, sample: int) -> None:
        self.frames = {k: v for k, v in self.frames.items() if k >= ms}
        self.clips = {k: v for k, v in self.clips.items() if k[0] >= sample}


def _rgb(frame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24") if isinstance(frame, av.VideoFrame) else frame


class Stream:
    def __init__(self, pipeline: Pipeline, specs: list[SourceSpec], options: StreamOptions, writer):
        self.pipeline = pipeline
        self.options = options
        self.writer = writer
        self.prep = pipeline.manifest.preprocessing
        self.stop = threading.Event()
        try:
            self.detector = face_detector(self.prep, options.face_crop)
        except ImportError:
            self.detector = None  # output says face: null
        self.vad = self.asr = None
        if options.vad != "off":
            from runtime.speech import VoiceActivity

            self.vad = VoiceActivity(options.threads)
        if options.asr:
            from runtime.speech import Transcriber

            self.asr = Transcriber(options.threads)
        self._lock = threading.Lock()
        self.readers = [Reader(s, self._on_frame, self._on_audio, self.stop, self.prep.sample_rate) for s in specs]
        if not any(r.has_video for r in self.readers):
            raise ValueError("no input has a video stream")
        self.has_audio = any(r.has_audio for r in self.readers)
        self.windower = Windower(self.prep, options.window_s, options.hop_s, self.has_audio)
        self.live = any(s.live or s.realtime for s in specs)
        self.drop = self.live if options.drop is None else options.drop
        self.windows_q: queue.Queue = queue.Queue(maxsize=options.queue_size)
        self.fused_q: queue.Queue = queue.Queue(maxsize=1)
        self.cache = FeatureCache()
        self.profile = Profile()
        self.counts = {"windows": 0, "answered": 0, "dropped": 0, "failed": 0, "silent": 0}
        self.first_result_s: float | None = None

    # --- capture side (reader threads) -------------------------------------------------------------

    def _on_frame(self, t: float, frame) -> None:
        with self._lock:
            self._emit(self.windower.add_frame(t, frame))

    def _on_audio(self, t: float, samples: np.ndarray) -> None:
        with self._lock:
            self._emit(self.windower.add_audio(t, samples))

    def _emit(self, windows: list[Window]) -> None:
        for w in windows:
            if self.options.max_windows is not None and self.counts["windows"] >= self.options.max_windows:
                self.stop.set()
                return
            self.counts["windows"] += 1
            self._put(self.windows_q, (w, time.perf_counter()))

    def _put(self, q: queue.Queue, item, final: bool = False) -> None:
        """Drop the stalest waiting item when full (live), or wait for room (files). After a stop, readers give
        up rather than wait; the last window and the end marker (`final`) always get in."""
        while True:
            try:
                q.put(item, timeout=0.1 if not self.drop else 0)
                return
            except queue.Full:
                if self.drop:
                    try:
                        q.get_nowait()
                        self.counts["dropped"] += 1
                    except queue.Empty:
                        pass
                elif self.stop.is_set() and not final:
                    return

    # --- encoder stage ------------------------------------------------------------------------------

    def encode(self, w: Window) -> tuple[np.ndarray, dict, bool | None]:
        """Window → fused rows [3, H], stage timings, face found (None without a detector)."""
        enc, watch = self.pipeline.encoders, Stopwatch()
        reuse = self.options.reuse_features
        todo = [(k, f) for k, f in zip(w.frame_keys, w.frames) if not (reuse and k in self.cache.frames)]
        todo = list(dict(todo).items())  # one entry per grid time
        crops, found = crop_faces([_rgb(frame) for _, frame in todo], self.detector)
        found = found or [None] * len(crops)
        watch.lap("face")
        pixels = pixel_values(crops, self.prep) if crops else None
        raw, spans = cut_clips(w.waveform, self.prep)
        # normalised over the window's clips together (scope "video"), a clip's features belong to its window
        per_window = (w.index,) if self.prep.audio_norm_scope == "video" else ()
        clip_keys = [(w.audio_offset + s, min(e, w.waveform.size) - s, *per_window) for s, e in spans]
        need = [i for i, key in enumerate(clip_keys) if not (reuse and key in self.cache.clips)]
        clips = (normalize_clips(raw, self.prep)[need] if per_window else normalize_clips(raw[need], self.prep)) if need else None
        watch.lap("preprocess")
        if pixels is not None:
            for (key, _), feature, ok in zip(todo, enc.encode_frames(pixels), found):
                self.cache.frames[key] = (feature, ok)
        watch.lap("vision")
        if clips is not None:
            for i, feature in zip(need, enc.encode_clips(clips)):
                self.cache.clips[clip_keys[i]] = feature
        watch.lap("audio")
        face = np.stack([self.cache.frames[k][0] for k in w.frame_keys])
        audio = np.stack([self.cache.clips[k] for k in clip_keys])
        fused = enc.fuse(face, audio)
        watch.lap("fusion")
        flags = [self.cache.frames[k][1] for k in w.frame_keys]
        face_found = None if self.detector is None else any(flags)
        self.cache.evict_before(w.frame_keys[0] + 1 if reuse else 1 << 62, w.audio_offset + 1 if reuse else 1 << 62)
        return fused, watch.ms, face_found

    def _encode_loop(self) -> None:
        while True:
            item = self.windows_q.get()
            if item is _END:
                self._put(self.fused_q, _END, final=True)
                return
            w, ready = item
            try:
                speech, subtitle, speech_ms = self.listen(w)
                if speech is False and self.options.vad == "skip":
                    self.counts["silent"] += 1
                    self.writer.window(self._record(w, speech=False, subtitle=subtitle, timings=speech_ms, skipped="silent"))
                    continue
                fused, timings, face = self.encode(w)
            except Exception as err:  # a bad window is skipped and counted, never fatal
                self.counts["failed"] += 1
                self.writer.window(self._record(w, error=f"{type(err).__name__}: {err}"))
                continue
            self._put(self.fused_q, (w, ready, fused, {**speech_ms, **timings}, face, speech, subtitle), final=True)

    def listen(self, w: Window) -> tuple[bool | None, str, dict]:
        """Voice activity and subtitle of a window (None / the fixed subtitle when those stages are off)."""
        watch, speech, subtitle = Stopwatch(), None, self.options.subtitle
        if self.vad is not None and w.has_audio:
            speech = self.vad.speech_fraction(w.waveform) >= 0.1
            watch.lap("vad")
        if self.asr is not None and w.has_audio and speech is not False:
            watch.skip()
            subtitle = self.asr.transcribe(w.waveform)
            watch.lap("asr")
        return speech, subtitle, watch.ms

    # --- LLM stage ----------------------------------------------------------------------------------

    def _llm_loop(self) -> None:
        while True:
            item = self.fused_q.get()
            if item is _END:
                return
            w, ready, fused, timings, face, speech, subtitle = item
            try:
                result = self.pipeline.answer(fused, subtitle, self.options.task)
            except Exception as err:
                self.counts["failed"] += 1
                self.writer.window(self._record(w, error=f"{type(err).__name__}: {err}"))
                continue
            timings.update(result.timings_ms, window_latency=(time.perf_counter() - ready) * 1e3)
            text, labels = result.text, result.labels
            self.profile.add(timings, len(result.token_ids))
            self.counts["answered"] += 1
            if self.first_result_s is None:
                self.first_result_s = time.perf_counter() - self._t_start
            self.writer.window(self._record(w, text=text, labels=labels, face=face, timings=timings, tokens=len(result.token_ids),
                                            speech=speech, subtitle=subtitle))

    def _record(self, w: Window, text="", labels=(), face=None, timings=None, tokens=0, error=None,
                speech=None, subtitle=None, skipped=None) -> dict:
        record = {"window": w.index, "start": round(w.start, 3), "end": round(w.end, 3), "partial": w.partial,
                  "labels": list(labels), "sentiment": sentiment(list(labels)), "text": text, "face": face,
                  "speech": speech, "subtitle": self.options.subtitle if subtitle is None else subtitle,
                  "dropped": self.counts["dropped"], "tokens": tokens,
                  "timings_ms": {k: round(v, 3) for k, v in (timings or {}).items()}}
        if error:
            record["error"] = error
        if skipped:
            record["skipped"] = skipped
        return record

    # --- running ------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """One window of black frames and silence through every stage, so the first real one is not slow."""
        n, size = self.prep.num_frames, self.prep.image_size
        black = np.zeros((n, size, size, 3), np.uint8)
        face = self.pipeline.encoders.encode_frames(pixel_values(black, self.prep))
        audio = self.pipeline.encoders.encode_clips(np.zeros((self.prep.num_clips, self.prep.clip_samples), np.float32))
        self.pipeline.answer(self.pipeline.encoders.fuse(face, audio), self.options.subtitle,
                             self.options.task.with_budget(2))

    def run(self) -> dict:
        if self.options.warmup:
            self.warm_up()
        self._t_start = time.perf_counter()
        workers = [threading.Thread(target=self._encode_loop, daemon=True, name="encoders"),
                   threading.Thread(target=self._llm_loop, daemon=True, name="llm")]
        for thread in workers + self.readers:
            thread.start()
        interrupted = False
        try:
            while any(r.is_alive() for r in self.readers) and not self.stop.is_set():
                time.sleep(0.05)
        except KeyboardInterrupt:
            interrupted = True
        self.stop.set()
        for r in self.readers:
            r.join(timeout=5)
        with self._lock:
            if self.options.max_windows is None or self.counts["windows"] < self.options.max_windows:
                for w in self.windower.flush():  # the last, unfinished window
                    self.counts["windows"] += 1
                    self._put(self.windows_q, (w, time.perf_counter()), final=True)
        self._put(self.windows_q, _END, final=True)
        try:
            for thread in workers:
                thread.join()
        except KeyboardInterrupt:
            interrupted = True
        elapsed = time.perf_counter() - self._t_start
        summary = dict(self.counts, elapsed_s=round(elapsed, 3),
                       windows_per_s=round(self.counts["answered"] / elapsed, 3) if elapsed > 0 else 0.0,
                       corrupt_packets=sum(r.stats.corrupt_packets for r in self.readers),
                       reconnects=sum(r.stats.reconnects for r in self.readers),
                       input_errors=[r.stats.error for r in self.readers if r.stats.error],
                       interrupted=interrupted, face_detector=self.detector is not None)
        return summary
