"""`--annotate OUT.mp4`: the input written again with the answers drawn on it (face box, labels, sentiment) and
its original audio, frame by frame as the stream reads them — nothing is buffered beyond the encoder's own
few frames, so memory stays flat however long or large the input (frames arrive at most 1280 pixels wide).
A frame shows the latest answer written when it passes: an answer appears a window's latency after its speech.
"""

from __future__ import annotations

import atexit
import io
import sys
import threading
from fractions import Fraction
from pathlib import Path

import av

from runtime.errors import EdgeError
from runtime.overlay import FaceBoxes, draw
from runtime.atomic import atomic_file
from runtime.redact import redact
from runtime.resample import Resampler
from runtime.sources import bounded_size, file_options

CLOCK = Fraction(1, 90000)


class AnnotateError(EdgeError):
    pass


def _format(path: Path) -> str | None:
    return None if path.suffix else "mp4"  # FFmpeg picks the container by the name; none given: MP4


def check_target(path: str, source: str | None = None, overwrite: bool = False) -> None:
    """Refuse, before anything runs, a target that is the input, exists (unless `overwrite`: a recording is never
    replaced without being asked), is a folder, or names a container that cannot hold H.264 and AAC."""
    target = Path(path)
    if source is not None and target.exists() and Path(source).exists() and target.resolve() == Path(source).resolve():
        raise AnnotateError(f"--annotate would overwrite its own input {source}")
    if target.is_dir():
        raise AnnotateError(f"--annotate {path} is a folder: name the file to write")
    if target.exists() and not overwrite:
        raise AnnotateError(f"--annotate {path} exists: pass --overwrite to replace it")
    probe = io.BytesIO()
    probe.name = target.name
    try:
        with av.open(probe, "w", format=_format(target)) as out:
            out.add_stream("libx264", rate=25)
            out.add_stream("aac", rate=16000)
    except (av.FFmpegError, ValueError) as err:
        raise AnnotateError(f"--annotate cannot write {path}: {err} (use .mp4, .mkv or .mov)") from None


class Annotator:
    def __init__(self, path: str, stream, overwrite: bool = False):
        from runtime.overlay import _pillow

        try:
            _pillow()
        except ImportError as err:
            raise AnnotateError(str(err)) from None
        self.path = Path(path)
        self.stream = stream
        self.overwrite = overwrite
        source = stream.specs[0].url
        check_target(path, source, overwrite)
        try:
            with av.open(source, options=file_options()) as probe:
                self.audio_in = probe.streams.audio[0] if probe.streams.audio else None
                self.audio_rate = self.audio_in.rate if self.audio_in is not None else None
                self.audio_layout = self.audio_in.layout.name if self.audio_in is not None else None
                video = probe.streams.video[0] if probe.streams.video else None
                if video is None:
                    raise AnnotateError(f"{source} has no video to draw on")
                self.fps = float(video.average_rate or 25)
                size = bounded_size(video.codec_context.width, video.codec_context.height)
        except av.FFmpegError as err:
            raise AnnotateError(f"cannot read {source} to annotate it: {err}") from None
        self.error: str | None = None  # why the copy could not be written
        self._atomic = atomic_file(self.path, overwrite=overwrite)  # the copy appears whole, or not at all
        try:
            self._tmp = self._atomic.__enter__()
        except OSError as err:
            raise AnnotateError(f"cannot write {self.path}: {err.strerror or err}") from None
        atexit.register(self._discard)  # an exit that never reaches close() (Ctrl-C while warming up) leaves nothing
        try:
            self.out = av.open(str(self._tmp), "w", format=_format(self.path))
            # both streams before the first packet (the header is written then): the video at the reader's frame size
            self.video = self.out.add_stream("libx264", rate=max(1, int(round(self.fps))))
            self.video.width, self.video.height = size[0] // 2 * 2, size[1] // 2 * 2
            self.video.pix_fmt = "yuv420p"
            self.video.codec_context.time_base = CLOCK
            self.video.options = {"preset": "veryfast", "tune": "zerolatency", "crf": "23"}
            self.audio = None
            if self.audio_rate:
                self.audio = self.out.add_stream("aac", rate=self.audio_rate)
                self.audio.layout = self.audio_layout
        except (av.FFmpegError, OSError, ValueError) as err:
            self._discard()
            raise AnnotateError(f"cannot write {self.path}: {err}") from None
        self._current = {"labels": [], "sentiment": "neutral"}
        self._faces = FaceBoxes()
        self._lock = threading.Lock()
        self._last_pts = -1
        # the encoder's sample format at the input's first rate and layout, whatever the input changes to
        self._resampler = Resampler("fltp", self.audio_layout, self.audio_rate) if self.audio is not None else None
        self._audio_t = None
        self.frames = 0
        self.closed = False

    def _failed(self, err: BaseException) -> None:
        """The copy cannot be written (a full disk, a file size limit): the stream stops and exits 1 with the reason,
        rather than going on to end with no file and exit 0."""
        if self.error is None:
            reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
            self.error = f"--annotate cannot write {self.path}: {redact(reason)}"
            self.stream.errors.append(self.error)
            self.stream.stop.set()

    def _discard(self) -> None:
        atexit.unregister(self._discard)
        out = getattr(self, "out", None)
        if out is not None:
            try:
                out.close()
            except Exception:  # noqa: BLE001 — it is being thrown away
                pass
        try:
            self._atomic.__exit__(AnnotateError, AnnotateError("discarded"), None)
        except AnnotateError:
            pass

    def frame(self, t: float, frame) -> None:
        rgb = frame.to_ndarray(format="rgb24")
        people = self._current.get("people")
        if people and len(people) > 1:  # each box where the face is in this frame, not where the window saw it
            box, people = None, self._faces.people(t, rgb, people, 1.0)
        else:
            box = self._faces.update(t, rgb)
        image = draw(rgb, box, self._current["labels"], self._current["sentiment"], self._current.get("span"), people)
        out = av.VideoFrame.from_image(image)
        pts = int(round(t / CLOCK))
        with self._lock:
            if self.closed or self.error or pts <= self._last_pts:
                return
            if (out.width, out.height) != (self.video.width, self.video.height):
                out = out.reformat(width=self.video.width, height=self.video.height)
            out.pts, out.time_base = pts, CLOCK
            self._last_pts = pts
            try:
                self.out.mux(self.video.encode(out))
            except (av.FFmpegError, OSError, ValueError) as err:
                self._failed(err)
                return
            self.frames += 1

    def raw_audio(self, t: float, frame) -> None:
        with self._lock:
            if self.closed or self.error or self.audio is None:
                return
            if self._audio_t is None or abs(t - self._audio_t) > 0.25:  # in step with the video's clock
                self._audio_t = max(t, 0.0)
            try:
                for out in self._resampler.resample(frame):
                    out.pts, out.time_base = int(round(self._audio_t * self.audio_rate)), Fraction(1, self.audio_rate)
                    self._audio_t += out.samples / self.audio_rate
                    self.out.mux(self.audio.encode(out))
            except (av.FFmpegError, OSError, ValueError) as err:
                self._failed(err)

    def record(self, record: dict) -> None:
        if not record.get("error") and not record.get("skipped"):
            self._current = {"labels": record["labels"], "sentiment": record["sentiment"],
                             "span": (record["start"], record["end"]), "people": record.get("people") or []}

    def summary(self, summary: dict) -> None:
        self.close(summary)

    def close(self, summary: dict | None = None) -> None:
        """Finish the copy and put it in place, or remove it and say why — in the summary's input errors (which the
        command line prints) when there is one, else on stderr — and make the exit status 1. Called from the
        record writer, whose observers' errors go nowhere, so nothing here may fail silently."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            reported = self.error is not None  # a failure during the run is in the stream's errors already
            if self.error is None and self.frames == 0:
                self.error = f"--annotate wrote nothing to {self.path}: no frame reached it"
            if self.error is None:
                try:
                    for stream in (self.video, self.audio):
                        if stream is not None:
                            self.out.mux(stream.encode(None))
                    self.out.close()
                    self._atomic.__exit__(None, None, None)
                    atexit.unregister(self._discard)
                    return
                except FileExistsError:
                    self.error = f"--annotate {self.path} appeared while it was written: pass --overwrite to replace it"
                except Exception as err:  # noqa: BLE001 — a full disk at the last write, whatever the library raises
                    self.error = f"--annotate cannot write {self.path}: {redact(getattr(err, 'strerror', None) or err)}"
            self._discard()
            if not reported:
                self.stream.errors.append(self.error)
                if summary is not None:
                    summary.setdefault("input_errors", []).append(self.error)
                else:
                    print(f"error: {self.error}", file=sys.stderr, flush=True)
