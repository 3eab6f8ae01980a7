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
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path

from runtime.pipeline import Pipeline, RuntimeOptions
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


@dataclass
class WindowAnswer:
    """One window's answer: the fields of a JSON line of `python -m runtime.stream`."""

    window: int
    start: float
    end: float
    partial: bool = False
    labels: list[str] = field(default_factory=list)
    sentiment: str = "neutral"
    text: str = ""
    face: bool | None = None
    video: bool = True
    audio: bool = True
    speech: bool | None = None
    subtitle: str = ""
    dropped: int = 0
    tokens: int = 0
    timings_ms: dict = field(default_factory=dict)
    error: str | None = None
    skipped: str | None = None

    @classmethod
    def from_record(cls, record: dict) -> "WindowAnswer":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known})


class _Queue:
    """The writer a Stream hands its records to: they wait for the iterating thread."""

    def __init__(self):
        self.items: queue.Queue = queue.Queue(maxsize=256)
        self.summary_record: dict | None = None

    def window(self, record: dict) -> None:
        self.items.put(record)

    def summary(self, summary: dict) -> None:
        self.summary_record = summary


_DONE = object()


def sources_for(video=None, camera=None, url=None, input=None, format=None, mic=None, audio_input=None,
                audio_format=None, loop=False, realtime=False, reconnect=False, width=None, height=None, fps=None) -> list:
    """The inputs of a stream, as the command line's --video / --camera / --url / --input (+ --mic / --audio-input)."""
    from runtime import sources

    if sum(x is not None for x in (video, camera, url, input)) != 1:
        raise ValueError("give exactly one of video, camera, url or input")
    if camera is not None:
        specs = [sources.camera(camera, width, height, fps, reconnect=reconnect)]
    elif video is not None:
        specs = [sources.media_file(str(video), loop=loop, realtime=realtime)]
    elif url is not None:
        specs = [sources.network(url, reconnect=reconnect)]
    else:
        specs = [sources.generic(input, format, audio=not (mic or audio_input), realtime=realtime, reconnect=reconnect)]
    if mic:
        specs.append(sources.microphone(mic))
    elif audio_input:
        specs.append(sources.generic(audio_input, audio_format, video=False))
    return specs


class Stream:
    """A live or recorded input answered window by window; iterate it for `WindowAnswer`s.

    Stream("clip.mp4"), Stream(camera=0, mic="default"), Stream(url="rtsp://..."), Stream(input="testsrc",
    format="lavfi"); options as the command line's (`subtitle`, `task`, `window_s`, `hop_s`, `vad`, `asr`,
    `face_crop`, `max_windows`, `loop`, `realtime`, ...); `bundle` and `threads` choose the model and its cores.
    """

    def __init__(self, video=None, *, bundle=None, camera=None, url=None, input=None, format=None, mic=None,
                 audio_input=None, audio_format=None, loop=False, realtime=False, reconnect=False, task="labels",
                 max_new_tokens=None, threads=None, pipeline: Pipeline | None = None, **options):
        from runtime.stream import Stream as Engine, StreamOptions

        self._own_pipeline = pipeline is None  # opened here: closed here when the stream ends
        self.pipeline = pipeline or open_bundle(bundle, threads=threads)
        specs = sources_for(video, camera, url, input, format, mic, audio_input, audio_format, loop, realtime, reconnect)
        self._writer = _Queue()
        self.engine = Engine(self.pipeline, specs, StreamOptions(task=get_task(task, max_new_tokens), **options),
                             self._writer)
        self.summary: dict | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self.error: BaseException | None = None

    def start(self) -> "Stream":
        """Begin in a background thread (iterating starts it too)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="stream")
            self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.summary = self.engine.run()
            self.engine.records.summary(self.summary)
            self.engine.records.close()
        except BaseException as err:  # noqa: BLE001 — handed to the iterating thread
            self.error = err
        finally:
            if self._own_pipeline and not (self.summary or {}).get("abandoned"):
                self.pipeline.close()
            while True:  # the end marker always gets through, even to a consumer that stopped reading
                try:
                    self._writer.items.put(_DONE, timeout=0.5)
                    break
                except queue.Full:
                    if self._closing:
                        break

    def stop(self) -> None:
        """End the stream from any thread: the windows under way are answered, then iteration ends."""
        self.engine.stop.set()

    def __iter__(self):
        self.start()
        try:
            while (record := self._writer.items.get()) is not _DONE:
                yield WindowAnswer.from_record(record)
        finally:
            self.stop()
            self._closing = True
            while self._thread.is_alive():  # keep taking what the stream still writes, so it can finish
                try:
                    self._writer.items.get(timeout=0.2)
                except queue.Empty:
                    pass
        if self.error is not None:
            raise self.error

    def observe(self, observer) -> None:
        """See runtime.stream.Stream.observe (the dashboard and the annotated copy are observers)."""
        self.engine.observe(observer)
