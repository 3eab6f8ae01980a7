"""Streaming: readers → windows → encoders → LLM → one writer, each stage a thread, joined by bounded queues.
(`python -m runtime.stream` is its command line: runtime/stream/__main__.py.)

When the LLM falls behind a live source, the stalest waiting windows are dropped and counted, so latency
and memory stay flat; a file is read no faster than it is answered (nothing dropped) unless it is paced
in real time. Features of frames and audio clips shared by overlapping windows are computed once.

Shutdown always ends: every worker signals the others when it leaves, for whatever reason; the main loop
watches the workers, the output and each live input (an input that delivers nothing for `stall_s` counts as
dead); the drain has a deadline, and a worker still busy after it is left alone (the caller must then not free
the model). Inputs open after the warm-up, so a network stream is never left unread while the model loads.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from runtime import systemd
from runtime.answer import answer_many
from runtime.encode import FeatureReuse, encode, encoder_inputs, face_detector, frame_size
from runtime.face import inside
from runtime.pipeline import Pipeline
from runtime.profile import Profile
from runtime.prompt import sanitize_subtitle
from runtime.sentiment import sentiment
from runtime.sources import Reader, SourceError, SourceSpec
from runtime.stream.observers import Observers
from runtime.stream.records import Person, RecordWriter, WindowAnswer
from runtime.task import TASKS, Task
from runtime.timing import Stopwatch
from runtime.windows import Window, Windower

_END = object()
MIN_STAGE_TIMEOUT_S = 60.0
STAGE_TIMEOUT_FACTOR = 20  # a real window's answer may take several times the 2-token warm-up's
NO_WARMUP_STAGE_TIMEOUT_S = 300.0
SILENCE_RMS = 1e-3  # below this a window holds no speech worth transcribing (when the VAD is off)


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
    stall_s: float = 10.0  # a live input that delivers nothing for this long is dead
    drain_s: float = 30.0  # after the input ends, how long the queued windows may go without one finishing
    stage_timeout_s: float | None = None  # a stage busy this long on one window hangs: the stream fails (exit 1);
    # None: STAGE_TIMEOUT_FACTOR × the warm-up window's cost, at least MIN_STAGE_TIMEOUT_S
    max_people: int | None = None  # people answered per window, largest faces first; 1: the largest face only;
    # None: runtime.people.DEFAULT_MAX_PEOPLE where the tracker (extra `people`) is installed, else 1


class Stream:
    def __init__(self, pipeline: Pipeline, specs: list[SourceSpec], options: StreamOptions, writer):
        self.pipeline = pipeline
        self.options = options
        self.specs = specs
        self.prep = pipeline.manifest.preprocessing
        self.subtitle = sanitize_subtitle(options.subtitle)
        self.stop = threading.Event()
        self.failed = threading.Event()  # a worker left with an error
        self.errors: list[str] = []
        try:
            self.detector = face_detector(self.prep, options.face_crop)
        except ImportError as err:  # the model wants crops it cannot get: say so, then encode full frames
            self.detector = None  # output says face: null
            print(f"warning: {err}; full frames are encoded", file=sys.stderr)
        self.vad = self.asr = None
        if options.vad != "off":
            from runtime.speech import VoiceActivity

            self.vad = VoiceActivity(options.threads)
        if options.asr:
            from runtime.speech import Transcriber

            self.asr = Transcriber(options.threads)
        self._lock = threading.Lock()
        self.readers: list[Reader] = []
        self.dead: list[Reader] = []  # live inputs that stalled
        self.windower: Windower | None = None
        self.live = any(s.live or s.realtime for s in specs)
        self.drop = self.live if options.drop is None else options.drop
        self.windows_q: queue.Queue = queue.Queue(maxsize=options.queue_size)
        self.fused_q: queue.Queue = queue.Queue(maxsize=1)
        self.features = FeatureReuse(pipeline.encoders, self.prep, self.detector, pipeline.manifest.dims.vision_dim,
                                     options.reuse_features)
        self.max_people, self.people, self.multi_llm = self._open_people(options.max_people)
        if self.people is not None:
            self.features.largest_at = self.people.largest_at
        self._audio, self._faces, self._box = None, None, None  # the last encoded window's audio features, face flags
        # and the largest face's box in its last frame
        self.profile = Profile()
        self.observers = Observers()  # e.g. the dashboard, the annotated copy: see `observe`
        self.records = RecordWriter(writer, on_closed=self.stop.set, observers=self.observers)
        self.counts = {"windows": 0, "answered": 0, "dropped": 0, "failed": 0, "silent": 0,
                       "without_audio": 0, "without_video": 0}
        self.first_result_s: float | None = None
        self._t_start = time.perf_counter()
        self._inputs_closed = False  # set when the windower is flushed: a late read must not add windows
        self._progress_at, self._progress_done = time.monotonic(), 0  # the drain's watch on finished windows
        self.busy: dict[str, float | None] = {"encoders": None, "llm": None}  # since when a stage works on a window
        self.stage_timeout_s = options.stage_timeout_s or NO_WARMUP_STAGE_TIMEOUT_S

    def _open_people(self, wanted: int | None):
        """→ (max people per window, the per-person encoder or None, the LLM context of that many sequences or None).
        Several people need face crops and the tracker; without them the stream answers the largest face, saying
        so when more were asked for."""
        if wanted is not None and wanted < 1:
            raise ValueError(f"--max-people must be at least 1, not {wanted}")
        from runtime.people import DEFAULT_MAX_PEOPLE, PeopleFeatures

        n = DEFAULT_MAX_PEOPLE if wanted is None else wanted
        if n == 1:
            return 1, None, None
        if self.detector is None:
            if wanted is not None:
                print("warning: several people need face crops; the whole frame is answered", file=sys.stderr)
            return 1, None, None
        from runtime.face_detector import BlazeFace
        from runtime.tracks import TrackerMissing, Tracks

        try:
            tracks = Tracks(BlazeFace(), self.prep.num_frames / self.options.window_s)
        except TrackerMissing as err:
            if wanted is not None:
                print(f"warning: {err}; the largest face is answered", file=sys.stderr)
            return 1, None, None
        people = PeopleFeatures(self.pipeline.encoders, self.prep, tracks, n)
        return n, people, self.pipeline.llm.fork(n)

    def close(self) -> None:
        """Free the per-person LLM context (before the pipeline frees the shared model)."""
        if self.multi_llm is not None:
            self.multi_llm.close()
            self.multi_llm = None

    def open_inputs(self) -> None:
        """Open every input (raises SourceError with the reason); the windower follows what they carry."""
        self.readers = []
        try:
            for spec in self.specs:
                self.readers.append(Reader(spec, self._on_frame, self._on_audio, self.stop, self.prep.sample_rate,
                                           on_raw_audio=self._on_raw_audio))
        except BaseException:
            for reader in self.readers:
                reader.close()
            raise
        has_video, has_audio = any(r.has_video for r in self.readers), any(r.has_audio for r in self.readers)
        if not (has_video or has_audio):
            raise SourceError("no input has a video or an audio stream")
        self.windower = Windower(self.prep, self.options.window_s, self.options.hop_s, has_audio, has_video)

    # --- capture side (reader threads) -------------------------------------------------------------

    def observe(self, observer) -> None:
        """Add an observer: any of `frame(t, av.VideoFrame)` and `raw_audio(t, av.AudioFrame)` (reader threads:
        keep them short), `record(dict)` and `summary(dict)` (the writer thread, in output order)."""
        self.observers.append(observer)

    def _on_frame(self, t: float, frame) -> None:
        self.observers.tell("frame", t, frame)  # before the windower shares the frame with the encoder thread
        with self._lock:
            self._emit(self.windower.add_frame(t, frame))

    def _on_raw_audio(self, t: float, frame) -> None:
        self.observers.tell("raw_audio", t, frame)

    def _on_audio(self, t: float, samples: np.ndarray) -> None:
        with self._lock:
            self._emit(self.windower.add_audio(t, samples))

    def _emit(self, windows: list[Window]) -> None:
        if self._inputs_closed:
            return
        for w in windows:
            if self.options.max_windows is not None and self.counts["windows"] >= self.options.max_windows:
                self.stop.set()
                return
            self.counts["windows"] += 1
            self._put(self.windows_q, (w, time.perf_counter()))

    def _put(self, q: queue.Queue, item, final: bool = False, give_up=None) -> bool:
        """Live (drop): when full, drop the stalest waiting window to make room. Files: wait for room. After a
        stop, readers give up rather than wait. A `final` item — the windows flushed at the end, the end marker, a
        window the encoders finished — never evicts another: it waits for room unless a worker has failed (then
        nobody would take it) or `give_up()` says so, so the last answer of a live stream is never lost.
        → whether it got in."""
        while True:
            try:
                q.put(item, timeout=0.1 if final or not self.drop else 0)
                return True
            except queue.Full:
                if self.failed.is_set() or (give_up is not None and give_up()):
                    return False
                if self.drop and not final:
                    try:
                        q.get_nowait()
                        self.counts["dropped"] += 1
                    except queue.Empty:
                        pass
                elif self.stop.is_set() and not final:
                    return False

    # --- encoder stage ------------------------------------------------------------------------------

    def encode(self, w: Window) -> tuple[np.ndarray, dict, bool | None]:
        """Window → fused rows [3, H], stage timings, face found (None without a detector or without video)."""
        watch = Stopwatch()
        features = self.features.encode(w.frames if w.has_video else [],
                                        w.frame_keys if w.has_video else [], w.waveform if w.has_audio else None,
                                        w.audio_offset, w.index, watch)
        self._audio = features.audio  # the people step fuses each person with this window's audio
        self._faces, self._box = features.faces, features.box
        face_found = None if features.faces is None or not w.has_video else any(features.faces)
        return features.fused, watch.ms, face_found

    def encode_people(self, w: Window) -> tuple[list, dict]:
        """After `encode(w)`: the window's people (runtime.people.WindowPerson, largest first) and their timings. With
        two or more, each carries its own fused rows; with one, the window's fused rows are that person's."""
        watch, people = Stopwatch(), []
        if not w.has_video or not w.frame_keys:
            return people, watch.ms
        if self.people is not None:
            people = self.people.people(w.frames, w.frame_keys, watch)
            if len(people) > 1:
                self.people.encode(people, w.frames, w.frame_keys, self._audio, watch)
            self.people.forget(w.frame_keys[0])
        elif self._box is not None and self._faces and any(self._faces):
            from runtime.people import WindowPerson

            box = inside(self._box, *frame_size(w.frames[-1]))  # where the answered face is now, for the outputs
            people = [WindowPerson(0, box, sum(self._faces), float(box[2] * box[3]), None)]
        return people, watch.ms

    def _encode_loop(self) -> None:
        try:
            while True:
                item = self.windows_q.get()
                if item is _END:
                    return
                w, ready = item
                self.busy["encoders"] = time.monotonic()
                try:
                    speech, subtitle, speech_ms = self.listen(w)
                    if speech is False and self.options.vad == "skip":
                        self.counts["silent"] += 1
                        self.records.write(self._record(w, speech=False, subtitle=subtitle, timings=speech_ms,
                                                        skipped="silent"))
                        continue
                    fused, timings, face = self.encode(w)
                    people, people_ms = self.encode_people(w)
                    timings = {**timings, **people_ms}
                except Exception as err:  # a bad window is skipped and counted, never fatal
                    self.counts["failed"] += 1
                    self.records.write(self._record(w, error=f"{type(err).__name__}: {err}"))
                    continue
                finally:
                    self.busy["encoders"] = None
                self._put(self.fused_q, (w, ready, fused, {**speech_ms, **timings}, face, speech, subtitle, people),
                          final=True)
        finally:
            self._put(self.fused_q, _END, final=True)  # the LLM stage always learns that nothing more comes

    def listen(self, w: Window) -> tuple[bool | None, str, dict]:
        """Voice activity and subtitle of a window (None / the fixed subtitle when those stages are off)."""
        watch, speech, subtitle = Stopwatch(), None, self.subtitle
        if self.vad is not None and w.has_audio:
            speech = self.vad.speech_fraction(w.waveform, self.prep.sample_rate) >= 0.1
            watch.lap("vad")
        if self.asr is not None:
            subtitle = ""
            audible = w.has_audio and w.waveform.size and float(np.sqrt(np.mean(w.waveform ** 2))) >= SILENCE_RMS
            if speech is not False and (speech or audible):  # without the VAD, silence is never transcribed
                watch.skip()
                subtitle = sanitize_subtitle(self.asr.transcribe(w.waveform, self.prep.sample_rate))
                watch.lap("asr")
        return speech, subtitle, watch.ms

    # --- LLM stage ----------------------------------------------------------------------------------

    def _llm_loop(self) -> None:
        while True:
            item = self.fused_q.get()
            if item is _END:
                return
            w, ready, fused, timings, face, speech, subtitle, people = item
            self.busy["llm"] = time.monotonic()
            try:
                if len(people) > 1:
                    answers = answer_many(self.multi_llm, self.pipeline.manifest.prompt, [p.fused for p in people],
                                          subtitle, self.options.task)
                else:
                    answers = [self.pipeline.answer(fused, subtitle, self.options.task)]
                result = answers[0]  # the primary person's: the largest face
            except Exception as err:
                self.counts["failed"] += 1
                self.records.write(self._record(w, error=f"{type(err).__name__}: {err}"))
                continue
            finally:
                self.busy["llm"] = None
            timings.update(result.timings_ms, window_latency=(time.perf_counter() - ready) * 1e3)
            self.profile.add(timings, len(result.token_ids))
            self.counts["answered"] += 1
            self.counts["without_audio"] += not w.has_audio
            self.counts["without_video"] += not w.has_video
            if self.first_result_s is None:
                self.first_result_s = time.perf_counter() - self._t_start
            self.records.write(self._record(w, text=result.text, labels=result.labels, face=face, timings=timings,
                                            tokens=len(result.token_ids), speech=speech, subtitle=subtitle,
                                            people=self._people(people, answers, speech)))

    @staticmethod
    def _people(people: list, answers: list, speech: bool | None) -> list[dict]:
        """The record's `people` (runtime/stream/records.py's Person), largest face first."""
        from runtime.people import speaking

        talking = speaking(people, speech)
        return [Person(p.id, [int(v) for v in p.box], list(a.labels), sentiment(list(a.labels)), a.text, talking[i],
                       i == 0, p.frames).to_dict()
                for i, (p, a) in enumerate(zip(people, answers))]

    def _record(self, w: Window, text="", labels=(), face=None, timings=None, tokens=0, error=None,
                speech=None, subtitle=None, skipped=None, people=None) -> dict:
        return WindowAnswer(
            w.index, round(w.start, 3), round(w.end, 3), w.partial, list(labels), sentiment(list(labels)), text, face,
            w.has_video, w.has_audio, speech, self.subtitle if subtitle is None else subtitle, self.counts["dropped"],
            tokens, {k: round(v, 3) for k, v in (timings or {}).items()}, people or [], error, skipped).to_record()

    # --- running ------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """One window of black frames and silence through every stage, so the first real one is not slow."""
        started = time.monotonic()
        n, size = self.prep.num_frames, self.prep.image_size
        black = np.zeros((n, size, size, 3), np.uint8)
        silence = np.zeros(self.prep.clip_samples, np.float32)
        inputs = encoder_inputs(black, silence, self.prep, face_crop=self.detector is not None)
        fused = encode(self.pipeline.encoders, inputs).fused
        self.pipeline.answer(fused, self.subtitle, self.options.task.with_budget(2))
        if self.multi_llm is not None:
            answer_many(self.multi_llm, self.pipeline.manifest.prompt, [fused] * self.max_people, self.subtitle,
                        self.options.task.with_budget(2))
        if self.options.stage_timeout_s is None:
            self.stage_timeout_s = max(MIN_STAGE_TIMEOUT_S, STAGE_TIMEOUT_FACTOR * (time.monotonic() - started))

    def _guarded(self, name: str, loop):
        """A worker that, however it leaves, lets the others go on or stop: an error is recorded and stops the stream."""
        def run():
            try:
                loop()
            except BaseException as err:  # noqa: BLE001 — a worker must never die silently
                self.errors.append(f"{name} stage failed: {type(err).__name__}: {err}")
                self.failed.set()
                self.stop.set()
        return threading.Thread(target=run, daemon=True, name=name)

    def _watch(self, reader: Reader) -> None:
        """A live input that has delivered nothing for stall_s (a camera or microphone that hangs without error)
        is dead — or, with --reconnect, replaced by a fresh reader of the same input (the hung read is left to
        its daemon thread, retired so that nothing it may still read gets in)."""
        if reader in self.dead or not reader.spec.live or time.monotonic() - reader.last_item < self.options.stall_s:
            return
        if not self.drop and self.windows_q.full():  # waiting for the LLM (back-pressure), not a hung input
            reader.last_item = time.monotonic()
            return
        if not reader.spec.reconnect:
            reader.stats.error = reader.stats.error or f"{reader.spec.describe()} delivered nothing for {self.options.stall_s:.0f} s"
            self.dead.append(reader)
            return
        try:
            # the outage took real time: the new reader's clock goes on from now, in step with the other inputs
            fresh = Reader(reader.spec, self._on_frame, self._on_audio, self.stop, self.prep.sample_rate,
                           start_at=reader.position + time.monotonic() - reader.last_item,
                           on_raw_audio=self._on_raw_audio)
        except SourceError:  # not back yet: try again after another stall period
            reader.last_item = time.monotonic()
            return
        reader.retired = True
        fresh.stats.reconnects = reader.stats.reconnects + 1
        self.readers[self.readers.index(reader)] = fresh
        fresh.start()

    def run(self) -> dict:
        """Warm up, open the inputs, stream until they end (or a stop), drain. → the summary. Raises SourceError
        when an input cannot be opened."""
        if self.options.warmup:
            self.warm_up()
        self.open_inputs()
        self._t_start = time.perf_counter()
        workers = [self._guarded("encoders", self._encode_loop), self._guarded("llm", self._llm_loop)]
        self.records.start()
        for thread in workers + self.readers:
            thread.start()
        interrupted = stalled = inputs_ended = False
        watchdog_s, petted = systemd.watchdog_interval_s(), 0.0
        systemd.notify("READY=1")
        try:
            while not self.stop.is_set():
                if not all(w.is_alive() for w in workers) or self._hung():
                    break
                if watchdog_s and time.monotonic() - petted >= watchdog_s:
                    systemd.notify("WATCHDOG=1")
                    petted = time.monotonic()
                for reader in list(self.readers):
                    self._watch(reader)
                flowing = [r for r in self.readers if r.is_alive() and r not in self.dead]
                if not flowing:
                    inputs_ended = True
                    stalled = any(r.is_alive() for r in self.readers)
                    break
                time.sleep(0.05)
        except KeyboardInterrupt:
            interrupted = True
        self.stop.set()
        self.records.stopping.set()
        try:
            for r in self.readers:
                r.join(timeout=1 if stalled or interrupted else 5)  # a hung device read is left to its daemon thread
            self._progress_at = time.monotonic()
            if self._lock.acquire(timeout=5):
                try:
                    self._inputs_closed = True
                    if self.options.max_windows is None or self.counts["windows"] < self.options.max_windows:
                        for w in self.windower.flush():  # the windows the input reached, and the unfinished last one
                            self.counts["windows"] += 1
                            self._put(self.windows_q, (w, time.perf_counter()), final=True, give_up=self._stuck)
                finally:
                    self._lock.release()
            self._put(self.windows_q, _END, final=True, give_up=self._stuck)
            self._drain(workers)
        except KeyboardInterrupt:  # a second Ctrl-C / SIGTERM: stop waiting
            interrupted = True
        systemd.notify("STOPPING=1")
        abandoned = any(w.is_alive() for w in workers)
        elapsed = time.perf_counter() - self._t_start
        # a live input that ended by itself with an error, or stalled: not one we stopped (--max-windows, Ctrl-C)
        died = [r.spec.describe() for r in self.readers if r.spec.live and r.stats.error and inputs_ended and not interrupted]
        summary = dict(self.counts, elapsed_s=round(elapsed, 3),
                       windows_per_s=round(self.counts["answered"] / elapsed, 3) if elapsed > 0 else 0.0,
                       corrupt_packets=sum(r.stats.corrupt_packets for r in self.readers),
                       reconnects=sum(r.stats.reconnects for r in self.readers),
                       discontinuities=sum(r.stats.discontinuities for r in self.readers) + self.windower.discontinuities,
                       audio_format_changes=sum(r.stats.format_changes for r in self.readers),
                       input_errors=[r.stats.error for r in self.readers if r.stats.error] + self.errors,
                       inputs_died=died, output_closed=self.records.closed, abandoned=abandoned,
                       interrupted=interrupted, face_detector=self.detector is not None)
        return summary

    def _hung(self) -> bool:
        """A stage busy on one window for longer than the stage timeout (a driver or a library that hangs) fails
        the stream, so that a service manager restarts it instead of it dropping windows for ever."""
        if self.failed.is_set():
            return True
        now = time.monotonic()
        for stage, since in self.busy.items():
            if since is not None and now - since > self.stage_timeout_s:
                self.errors.append(f"the {stage} stage made no progress for {now - since:.0f} s "
                                   f"(stage timeout {self.stage_timeout_s:.0f} s)")
                self.failed.set()
                return True
        return False

    def _stuck(self) -> bool:
        """No window has been finished for drain_s seconds: a stage hangs, the drain stops waiting for it."""
        done = self.counts["answered"] + self.counts["failed"] + self.counts["silent"]
        if done != self._progress_done:
            self._progress_done, self._progress_at = done, time.monotonic()
        return time.monotonic() - self._progress_at > self.options.drain_s

    def _drain(self, workers: list[threading.Thread]) -> None:
        """Wait for the windows still queued while they make progress: the drain ends once every worker is
        done, or when no window has been finished for drain_s seconds (a hung stage)."""
        while any(w.is_alive() for w in workers) and not self._stuck() and not self._hung() and not self.failed.is_set():
            for w in workers:
                w.join(timeout=0.2)

    def exit_status(self, summary: dict) -> int:
        """0 done; 1 an input died, a stage failed or nothing could be answered; 130 interrupted. A closed
        output (`| head`) is a normal end; --max-windows and windows all silent under --vad skip are done."""
        if summary["interrupted"]:
            return 130
        if summary["output_closed"]:
            return 0
        if summary["abandoned"] or self.errors or summary["inputs_died"]:
            return 1
        all_silent = self.options.vad == "skip" and summary["windows"] > 0 and summary["silent"] == summary["windows"]
        if summary["answered"] == 0 and not all_silent:
            return 1
        return 0

