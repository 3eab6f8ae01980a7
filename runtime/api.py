"""The Python API that the command line is a thin layer over.

    from runtime import Stream, answer_clip

    for answer in Stream("clip.mp4", subtitle="I can't believe it."):        # or a camera: Stream(camera=0)
        print(answer.start, answer.labels, answer.sentiment)

    print(answer_clip("clip.mp4", subtitle="Fine.").labels)

`Stream` yields one `WindowAnswer` per window (the fields of the CLI's JSON lines); `stop()` ends it from
another thread; `summary` holds the CLI's summary once it has ended.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from dataclasses import dataclass, fields
from pathlib import Path

from runtime.answer import fit_subtitle
from runtime.pipeline import Pipeline, RuntimeOptions
from runtime.prompt import MAX_SUBTITLE_CHARS, sanitize_subtitle
from runtime.stream.records import WindowAnswer
from runtime.signals import DEFAULT_HOLD, DEFAULT_SMOOTH_S, EventLines, Signals
from runtime.task import get_task

DEMO_BUNDLE = Path(__file__).resolve().parent / "demo" / "bundle"


def default_bundle() -> str | None:
    """$AFFECTGPT_BUNDLE when set, else the demo bundle that ships inside the package."""
    if os.environ.get("AFFECTGPT_BUNDLE"):
        return os.environ["AFFECTGPT_BUNDLE"]
    return str(DEMO_BUNDLE) if (DEMO_BUNDLE / "manifest.json").is_file() else None


def open_bundle(bundle: str | os.PathLike | None = None, **options) -> Pipeline:
    """A bundle loaded and checked (`options`: RuntimeOptions fields, e.g. threads=2, llm_variant="q8_0")."""
    path = bundle or default_bundle()
    if path is None:
        from runtime.manifest import BundleError

        raise BundleError("no bundle given and no demo bundle installed: pass a bundle folder or set AFFECTGPT_BUNDLE")
    return Pipeline(path, RuntimeOptions(**options))


_pipelines: dict[str, Pipeline] = {}
_pipelines_lock = threading.Lock()  # an LLM context answers one prompt at a time


def answer_clip(path: str | os.PathLike, subtitle: str = "", bundle: str | os.PathLike | None = None,
                task: str = "labels", max_new_tokens: int | None = None, face_crop: bool | None = None):
    """One answer for a whole file (`runtime.answer.Answer`: text, labels, token_ids, timings_ms). The bundle
    is loaded once and kept for later calls."""
    key = str(bundle or default_bundle())
    with _pipelines_lock:
        if key not in _pipelines:
            _pipelines[key] = open_bundle(bundle)
        return _pipelines[key].answer_file(path, subtitle, get_task(task, max_new_tokens), face_crop)


class _Queue:
    """Where a Stream's records wait for the iterating thread. While nobody iterates (a stream started only for
    its observers), the oldest waiting record makes room: the stream never blocks on a reader that is not there."""

    def __init__(self):
        self.items: queue.Queue = queue.Queue(maxsize=256)
        self.iterating = False
        self.closing = False  # the consumer has stopped reading: nothing waits for room any more

    def window(self, record: dict) -> None:
        self.put(record)

    def summary(self, summary: dict) -> None:
        pass  # Stream.summary holds it

    def put(self, item) -> None:
        while True:
            try:
                self.items.put(item, timeout=0.2)
                return
            except queue.Full:
                if self.closing:
                    return
                if not self.iterating:
                    try:
                        self.items.get_nowait()
                    except queue.Empty:
                        pass


_DONE = object()


@dataclass(frozen=True)
class SourceOptions:
    """The inputs of a stream, as the command line's --video / --camera / --url / --input (+ --mic / --audio-input)."""

    video: str | os.PathLike | None = None
    camera: int | None = None
    url: str | None = None
    input: str | None = None
    format: str | None = None  # FFmpeg input format of `input`
    mic: str | None = None  # ALSA device
    audio_input: str | None = None
    audio_format: str | None = None
    loop: bool = False
    realtime: bool = False
    reconnect: bool = False  # live inputs, the microphone included
    width: int | None = None  # camera capture size and rate
    height: int | None = None
    fps: float | None = None

    def specs(self) -> list:
        from runtime import sources

        if sum(x is not None for x in (self.video, self.camera, self.url, self.input)) != 1:
            raise ValueError("give exactly one of video, camera, url or input")
        if self.camera is not None:
            specs = [sources.camera(self.camera, self.width, self.height, self.fps, reconnect=self.reconnect)]
        elif self.video is not None:
            specs = [sources.media_file(str(self.video), loop=self.loop, realtime=self.realtime)]
        elif self.url is not None:
            specs = [sources.network(self.url, reconnect=self.reconnect)]
        else:
            specs = [sources.generic(self.input, self.format, audio=not (self.mic or self.audio_input),
                                     realtime=self.realtime, reconnect=self.reconnect)]
        if self.mic:
            specs.append(sources.microphone(self.mic, reconnect=self.reconnect))
        elif self.audio_input:
            specs.append(sources.generic(self.audio_input, self.audio_format, video=False, reconnect=self.reconnect))
        return specs


def speech_choice(vad: str | None, asr: bool | None, mic: str | None, subtitle: str) -> tuple[str, bool]:
    """Live subtitles by default where they help: a person speaking into a microphone is heard unless a subtitle is
    given. The automatic choice is gated by voice activity (silence makes no text) and steps aside, with a warning,
    where the speech packages are missing; an explicit `asr=True` fails later instead. → (vad, asr)."""
    if asr is not None or not mic or subtitle:
        return vad or "off", bool(asr)
    from runtime.speech import missing_speech_packages

    missing = missing_speech_packages()
    if "asr" in missing:
        warn(f"no live subtitles ({missing['asr']}); the words are not heard")
        return vad or "off", False
    if vad is None and "vad" in missing:
        warn(f"live subtitles without voice activity ({missing['vad']}): only quiet windows are left untranscribed")
    return vad or ("off" if "vad" in missing else "mark"), True


def fitted_subtitle(pipeline: Pipeline, subtitle: str, task) -> str:
    """The subtitle, cleaned once and cut to fit the context with the task's answer (a warning says so)."""
    given = " ".join(subtitle.split())
    fitted, cut = fit_subtitle(pipeline.llm, pipeline.manifest.prompt, sanitize_subtitle(subtitle), task)
    if cut or len(given) > MAX_SUBTITLE_CHARS:
        warn(f"the subtitle was cut from {len(given):,} to {len(fitted):,} characters to fit the context of "
             f"{pipeline.llm.n_ctx} positions with a {task.max_new_tokens}-token answer (--ctx)")
    return fitted


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


_SOURCE_KEYS = {f.name for f in fields(SourceOptions)}
_RUNTIME_KEYS = {f.name for f in fields(RuntimeOptions)}


class Stream:
    """A live or recorded input answered window by window; iterate it for `WindowAnswer`s, or hand it a `writer`
    (runtime/outputs.py) and `run()` it, as the command line does.

    Stream("clip.mp4"), Stream(camera=0, width=640, height=480, fps=15, mic="default"), Stream(url="rtsp://...",
    reconnect=True), Stream(input="testsrc", format="lavfi"). Every command-line option has its keyword: the
    inputs (SourceOptions), the model (`bundle`, `threads`, RuntimeOptions: n_ctx, backend, encoder_variant,
    llm_variant, verify_hashes), the stream (StreamOptions: subtitle, window_s, hop_s, vad, asr, face_crop,
    max_windows, drop, stall_s, stage_timeout_s, ...; `task`, `max_new_tokens`), the signals (`smooth` seconds,
    0 = off; `hold` windows before a change event: runtime/signals.py), and the observers (`serve`, `annotate`,
    `mqtt` "HOST[:PORT]/TOPIC" with `mqtt_tls`).
    """

    def __init__(self, video=None, *, bundle=None, pipeline: Pipeline | None = None, threads: int | None = None,
                 task: str = "labels", max_new_tokens: int | None = None, subtitle: str = "", vad: str | None = None,
                 asr: bool | None = None, writer=None, serve: str | None = None, health_timeout: float = 30.0,
                 dashboard_token_file: str | None = None, dashboard_host=(), annotate: str | None = None,
                 overwrite: bool = False, smooth: float = DEFAULT_SMOOTH_S, hold: int = DEFAULT_HOLD,
                 mqtt: str | None = None, mqtt_tls: bool = False, **options):
        from runtime.stream import Stream as Engine, StreamOptions

        unknown = set(options) - _SOURCE_KEYS - _RUNTIME_KEYS - {f.name for f in fields(StreamOptions)}
        if unknown:
            raise TypeError(f"Stream() got unknown options: {', '.join(sorted(unknown))}")
        pick = lambda keys: {k: v for k, v in options.items() if k in keys}  # noqa: E731
        source = SourceOptions(video=video, **pick(_SOURCE_KEYS))
        specs = source.specs()
        signals = Signals(smooth, hold)  # a bad value is refused before the model loads
        self._own_pipeline = pipeline is None  # opened here: closed here when the stream ends
        self.pipeline = pipeline or open_bundle(bundle, threads=threads, **pick(_RUNTIME_KEYS))
        task_ = get_task(task, max_new_tokens)
        vad, asr = speech_choice(vad, asr, source.mic, subtitle)
        stream_options = {k: v for k, v in options.items() if k not in _SOURCE_KEYS | _RUNTIME_KEYS}
        stream_options.setdefault("threads", threads or 1)
        self._writer = writer if writer is not None else _Queue()
        self.engine = Engine(self.pipeline, specs, StreamOptions(task=task_, subtitle=fitted_subtitle(self.pipeline, subtitle, task_),
                                                                 vad=vad, asr=asr, **stream_options), EventLines(self._writer))
        self.observers = []
        self.engine.observe(signals)  # first: every later observer sees the records with their signals
        try:
            if mqtt:
                from runtime.mqtt import MqttPublisher

                self.observe(MqttPublisher(mqtt, tls=mqtt_tls))
            if serve:
                from runtime.serve import Dashboard

                self.observe(Dashboard(serve, self.engine, health_timeout_s=health_timeout,
                                       token_file=dashboard_token_file, hosts=list(dashboard_host)).start())
            if annotate:
                from runtime.annotate import Annotator

                self.observe(Annotator(annotate, self.engine, overwrite=overwrite))
        except BaseException:
            self.close()
            raise
        self.summary: dict | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._iterating = False
        self.error: BaseException | None = None

    def run(self) -> dict:
        """Stream until the inputs end or `stop()`; the records go to the writer, then the summary. → the summary
        (with the providers and variants that ran). Raises SourceError when an input cannot be opened."""
        try:
            summary = self.engine.run()
            summary["providers"] = self.pipeline.encoders.providers
            summary["variants"] = {"encoders": self.pipeline.encoder_variant,
                                   "llm": self.pipeline.llm_variant or "exported"}
            self.summary = summary
            self.engine.records.summary(summary)
        finally:
            self.engine.records.close()
            self._close_observers()  # the annotated copy is finished even when nobody read the summary (| head)
        return summary

    def _close_observers(self) -> None:
        while self.observers:
            self.observers.pop().close()

    def close(self) -> None:
        """Close the observers, and the model when this stream opened it and no worker is still inside it."""
        self._close_observers()
        if self._own_pipeline and not (getattr(self, "summary", None) or {}).get("abandoned"):
            self.pipeline.close()

    def start(self) -> "Stream":
        """Begin in a background thread (iterating starts it too)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="stream")
            self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.run()
        except BaseException as err:  # noqa: BLE001 — handed to the iterating thread
            self.error = err
        finally:
            self.close()
            if isinstance(self._writer, _Queue):  # the end marker gets through unless the consumer has gone
                self._writer.put(_DONE)

    def stop(self, timeout: float | None = None) -> None:
        """End the stream from any thread: the windows under way are answered, then iteration ends. A stream that
        is not being iterated is waited for (at most `timeout` s)."""
        self.engine.stop.set()
        iterating = isinstance(self._writer, _Queue) and self._writer.iterating
        if self._thread is not None and not iterating and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __iter__(self):
        if not isinstance(self._writer, _Queue):
            raise TypeError("a Stream given a writer is run(), not iterated")
        self._writer.iterating = True
        self.start()
        try:
            while (record := self._writer.items.get()) is not _DONE:
                yield WindowAnswer.from_record(record)
        finally:
            self._writer.iterating = False
            self._writer.closing = True
            self.stop()
            self._thread.join()
        if self.error is not None:
            raise self.error

    def observe(self, observer) -> None:
        """Add an observer (see runtime.stream.Stream.observe; the dashboard and the annotated copy are observers);
        it is closed when the stream ends."""
        self.observers.append(observer)
        self.engine.observe(observer)
