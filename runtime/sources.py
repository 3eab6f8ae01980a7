"""Live and recorded inputs through av: cameras (V4L2), microphones (ALSA), files, network streams, and any
input FFmpeg reads (e.g. lavfi `testsrc` / `sine` as a fake camera and microphone).

A Reader decodes one container in a thread and hands on timestamped items: video frames (av.VideoFrame,
converted to RGB only when a window needs them) and audio as 16 kHz mono float32. Timestamps are seconds
since the container's first packet, so audio and video of one container stay aligned.
"""

from __future__ import annotations

import glob
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import av
import numpy as np

from runtime.errors import EdgeError

LIVE_SCHEMES = ("rtsp://", "rtsps://", "udp://", "rtp://", "srt://", "tcp://", "http://", "https://", "rtmp://")


class SourceError(EdgeError):
    """An input that cannot be opened; the message says which and why."""


@dataclass(frozen=True)
class SourceSpec:
    url: str
    format: str | None = None
    options: dict = field(default_factory=dict)
    video: bool = True
    audio: bool = True
    live: bool = False  # a camera / network stream: windows are dropped rather than waited for
    loop: bool = False  # files only: start again at the end
    realtime: bool = False  # files only: pace decoding at 1× speed, as a camera would deliver
    reconnect: bool = False  # live only: reopen after an error or the end of the stream
    label: str = ""

    def describe(self) -> str:
        return self.label or self.url


def camera(index: int, width: int | None = None, height: int | None = None, fps: float | None = None) -> SourceSpec:
    options = {}
    if width and height:
        options["video_size"] = f"{width}x{height}"
    if fps:
        options["framerate"] = str(fps)
    return SourceSpec(f"/dev/video{index}", "v4l2", options, audio=False, live=True, label=f"camera {index}")


def microphone(device: str = "default") -> SourceSpec:
    os.environ.setdefault("ALSA_CONFIG_DIR", "/usr/share/alsa")  # the av wheel's ALSA looks elsewhere otherwise
    return SourceSpec(device, "alsa", {}, video=False, live=True, label=f"microphone {device}")


def media_file(path: str, loop: bool = False, realtime: bool = False) -> SourceSpec:
    return SourceSpec(str(path), None, {}, loop=loop, realtime=realtime, label=str(path))


def network(url: str, reconnect: bool = False) -> SourceSpec:
    options = {"rtsp_transport": "tcp"} if url.startswith("rtsp") else {}
    return SourceSpec(url, None, options, live=True, reconnect=reconnect, label=url)


def generic(url: str, fmt: str | None, video: bool = True, audio: bool = True, live: bool = True) -> SourceSpec:
    return SourceSpec(url, fmt, {}, video=video, audio=audio, live=live, label=f"{fmt}:{url}" if fmt else url)


def open_container(spec: SourceSpec, timeout_s: float = 10.0):
    if spec.format == "v4l2" and not os.path.exists(spec.url):
        found = sorted(glob.glob("/dev/video*"))
        raise SourceError(f"no camera at {spec.url}; " + (f"found {', '.join(found)}" if found else "no /dev/video* device exists"))
    if spec.format is None and "://" not in spec.url and not os.path.exists(spec.url):
        raise SourceError(f"input not found: {spec.url}")
    try:
        return av.open(spec.url, format=spec.format, options=dict(spec.options), timeout=(timeout_s, timeout_s))
    except av.FFmpegError as err:
        raise SourceError(f"cannot open {spec.describe()}: {err}") from None


@dataclass
class ReaderStats:
    frames: int = 0
    audio_samples: int = 0
    corrupt_packets: int = 0
    reconnects: int = 0
    ended: bool = False
    error: str | None = None


class Reader(threading.Thread):
    """Decode one input until it ends (or `stop` is set); call on_frame(t, frame) / on_audio(t, samples)."""

    def __init__(self, spec: SourceSpec, on_frame: Callable | None, on_audio: Callable | None,
                 stop: threading.Event, sample_rate: int = 16000):
        super().__init__(daemon=True, name=f"reader:{spec.describe()}")
        self.spec = spec
        self.on_frame = on_frame if spec.video else None
        self.on_audio = on_audio if spec.audio else None
        self.stop = stop
        self.sample_rate = sample_rate
        self.stats = ReaderStats()
        self.has_video = self.has_audio = False
        self._container = open_container(spec)  # open now, so a bad input fails before any thread starts
        self.has_video = bool(self._container.streams.video) and self.on_frame is not None
        self.has_audio = bool(self._container.streams.audio) and self.on_audio is not None

    def run(self) -> None:
        offset = 0.0  # added on each loop / reconnect so time never goes backwards
        container = self._container
        backoff = 0.5
        while not self.stop.is_set():
            last = self._decode(container, offset)
            container.close()
            if self.stop.is_set():
                break
            if self.spec.loop:
                offset = last
            elif self.spec.reconnect:
                self.stats.reconnects += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 8.0)
                offset = last
            else:
                break
            try:
                container = open_container(self.spec)
            except SourceError as err:
                if not self.spec.reconnect:
                    self.stats.error = str(err)
                    break
                container = None
                while container is None and not self.stop.is_set():
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 8.0)
                    try:
                        container = open_container(self.spec)
                    except SourceError:
                        continue
                if container is None:
                    break
        self.stats.ended = True

    def _decode(self, container, offset: float) -> float:
        """Decode until the end; → the time just past the last item, for the next loop's offset."""
        streams = []
        video = container.streams.video[0] if self.has_video and container.streams.video else None
        audio = container.streams.audio[0] if self.has_audio and container.streams.audio else None
        if video is not None:
            video.thread_type = "AUTO"
            streams.append(video)
        if audio is not None:
            streams.append(audio)
            resampler = av.AudioResampler(format="fltp", layout=audio.layout.name, rate=self.sample_rate)
        if not streams:
            return offset
        t0 = None
        last = offset
        wall0 = time.monotonic()
        frame_dur = 1.0 / float(video.average_rate or 25) if video is not None else 0.0
        try:
            for packet in container.demux(streams):
                if self.stop.is_set():
                    break
                try:
                    decoded = packet.decode()
                except av.FFmpegError:  # a corrupt packet costs its frames, never the stream
                    self.stats.corrupt_packets += 1
                    continue
                for frame in decoded:
                    if frame.time is None:
                        continue
                    if t0 is None:
                        t0 = frame.time
                    t = offset + frame.time - t0
                    if self.spec.realtime:
                        delay = wall0 + (t - offset) - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                    if packet.stream is video:
                        self.stats.frames += 1
                        self.on_frame(t, frame)
                        last = max(last, t + frame_dur)
                    else:
                        for out in resampler.resample(frame):
                            samples = out.to_ndarray().mean(axis=0).astype(np.float32)
                            self.stats.audio_samples += samples.size
                            self.on_audio(offset + (out.time - t0 if out.time is not None else t - offset), samples)
                            last = max(last, t + samples.size / self.sample_rate)
        except av.FFmpegError as err:  # a stream that breaks off mid-way (truncated file, dropped connection)
            self.stats.corrupt_packets += 1
            self.stats.error = str(err)
        return last
