"""`--annotate OUT.mp4`: the input written again with the answers drawn on it (face box, labels, sentiment) and
its original audio, frame by frame as the stream reads them — nothing is buffered beyond the encoder's own
few frames, so memory stays flat however long or large the input (frames arrive at most 1280 pixels wide).
A frame shows the latest answer written when it passes: an answer appears a window's latency after its speech.
"""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av

from runtime.errors import EdgeError
from runtime.overlay import FaceBoxes, draw
from runtime.atomic import atomic_file
from runtime.sources import bounded_size, file_options

CLOCK = Fraction(1, 90000)


class AnnotateError(EdgeError):
    pass


class Annotator:
    def __init__(self, path: str, stream):
        from runtime.overlay import _pillow

        try:
            _pillow()
        except ImportError as err:
            raise AnnotateError(str(err)) from None
        self.path = Path(path)
        source = stream.specs[0].url
        if Path(source).resolve() == self.path.resolve():
            raise AnnotateError(f"--annotate would overwrite its own input {source}")
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
        self._atomic = atomic_file(self.path)  # the copy appears whole, or not at all
        self._tmp = self._atomic.__enter__()
        try:
            self.out = av.open(str(self._tmp), "w", format=self.path.suffix.lstrip(".") or "mp4")
        except (av.FFmpegError, OSError, ValueError) as err:
            self._atomic.__exit__(type(err), err, None)
            raise AnnotateError(f"cannot write {self.path}: {err}") from None
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
        self._current = {"labels": [], "sentiment": "neutral"}
        self._faces = FaceBoxes()
        self._lock = threading.Lock()
        self._last_pts = -1
        self._resampler, self._audio_format, self._audio_t = None, None, None
        self.frames = 0
        self.closed = False

    def frame(self, t: float, frame) -> None:
        rgb = frame.to_ndarray(format="rgb24")
        image = draw(rgb, self._faces.update(t, rgb), self._current["labels"], self._current["sentiment"])
        out = av.VideoFrame.from_image(image)
        pts = int(round(t / CLOCK))
        with self._lock:
            if self.closed or pts <= self._last_pts:
                return
            if (out.width, out.height) != (self.video.width, self.video.height):
                out = out.reformat(width=self.video.width, height=self.video.height)
            out.pts, out.time_base = pts, CLOCK
            self._last_pts = pts
            self.out.mux(self.video.encode(out))
            self.frames += 1

    def raw_audio(self, t: float, frame) -> None:
        with self._lock:
            if self.closed or self.audio is None:
                return
            key = (frame.format.name, frame.layout.name, frame.sample_rate)
            if key != self._audio_format:  # the encoder's sample format at the input's first rate and layout
                self._resampler, self._audio_format = av.AudioResampler(
                    format="fltp", layout=self.audio_layout, rate=self.audio_rate), key
            if self._audio_t is None or abs(t - self._audio_t) > 0.25:  # in step with the video's clock
                self._audio_t = max(t, 0.0)
            for out in self._resampler.resample(frame):
                out.pts, out.time_base = int(round(self._audio_t * self.audio_rate)), Fraction(1, self.audio_rate)
                self._audio_t += out.samples / self.audio_rate
                self.out.mux(self.audio.encode(out))

    def record(self, record: dict) -> None:
        if not record.get("error") and not record.get("skipped"):
            self._current = {"labels": record["labels"], "sentiment": record["sentiment"]}

    def summary(self, summary: dict) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            error = None
            try:
                for stream in (self.video, self.audio):
                    if stream is not None:
                        self.out.mux(stream.encode(None))
            except Exception as err:  # noqa: BLE001
                error = err
            finally:
                self.out.close()
                self._atomic.__exit__(type(error) if error else None, error, None)

