"""Live and recorded inputs through av: cameras (V4L2), microphones (ALSA), files, network streams, and any
input FFmpeg reads (e.g. lavfi `testsrc` / `sine` as a fake camera and microphone).

A Reader decodes one container in a thread and hands on timestamped items: video frames (av.VideoFrame,
reduced to a long side of at most 1280 pixels — enough for face crops — and converted to RGB only when a
window needs them) and audio as 16 kHz mono float32. Timestamps are seconds since the container's first
packet, so audio and video of one container stay aligned; a jump of more than a window (a camera clock reset,
an RTSP resync, concatenated recordings) is a discontinuity: time is rebased to go on where it was, and
counted. Each kind of source may use only the FFmpeg protocols and demuxers it needs.
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
from runtime.redact import redact
from runtime.resample import Resampler

LIVE_SCHEMES = ("rtsp://", "rtsps://", "udp://", "rtp://", "srt://", "tcp://", "http://", "https://", "rtmp://")
MAX_SIDE = 1280  # frames are reduced to this long side in the reader, before they queue
JUMP_S = 4.0  # a timestamp jump larger than this (a window) is a discontinuity
# FFmpeg protocols and demuxers per kind of source: a file is read as a file (no playlist or concat: reaching
# elsewhere), a network URL only over network protocols (no file://), a local pipe or FIFO as such.
LOCAL_PROTOCOLS = "file,pipe,fd"
NETWORK_PROTOCOLS = "rtsp,rtsps,rtp,srtp,udp,tcp,tls,http,https,httpproxy,srt,rtmp,rtmps,rtmpt,crypto"
FILE_FORMATS = ("mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,flv,wav,mp3,aac,ogg,flac,h264,hevc,mpeg,"
                "mpegvideo,m4v,asf,mxf,ivf,obu,wv,opus,amr,ac3,eac3,caf,aiff,w64,mjpeg")


def file_options() -> dict:
    return {"protocol_whitelist": LOCAL_PROTOCOLS, "format_whitelist": FILE_FORMATS}


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
        """How the input is named in messages and records: never with the credentials of its URL."""
        return redact(self.label or self.url)


def camera(index: int, width: int | None = None, height: int | None = None, fps: float | None = None,
           reconnect: bool = False) -> SourceSpec:
    options = {}
    if width and height:
        options["video_size"] = f"{width}x{height}"
    if fps:
        options["framerate"] = f"{fps:g}"
    return SourceSpec(f"/dev/video{index}", "v4l2", options, audio=False, live=True, reconnect=reconnect,
                      label=f"camera {index}")


def microphone(device: str = "default", reconnect: bool = False) -> SourceSpec:
    os.environ.setdefault("ALSA_CONFIG_DIR", "/usr/share/alsa")  # the av wheel's ALSA looks elsewhere otherwise
    return SourceSpec(device, "alsa", {}, video=False, live=True, reconnect=reconnect, label=f"microphone {device}")


def media_file(path: str, loop: bool = False, realtime: bool = False) -> SourceSpec:
    return SourceSpec(str(path), None, file_options(), loop=loop, realtime=realtime, label=str(path))


def network(url: str, reconnect: bool = False) -> SourceSpec:
    if not url.startswith(LIVE_SCHEMES):
        raise SourceError(f"--url takes a network stream ({', '.join(s[:-3] for s in LIVE_SCHEMES)}), not "
                          f"{redact(repr(url))}: use --video for a file")
    options = {"rtsp_transport": "tcp"} if url.startswith("rtsp") else {}
    options["protocol_whitelist"] = NETWORK_PROTOCOLS
    return SourceSpec(url, None, options, live=True, reconnect=reconnect, label=url)


def generic(url: str, fmt: str | None, video: bool = True, audio: bool = True, live: bool = True,
            realtime: bool = False, reconnect: bool = False) -> SourceSpec:
    """Any FFmpeg input (lavfi, a pipe or FIFO, a device): local protocols only, network ones for a URL.
    `realtime` paces it at 1× (a lavfi graph otherwise runs as fast as it can)."""
    options = {"protocol_whitelist": NETWORK_PROTOCOLS if "://" in url else LOCAL_PROTOCOLS}
    return SourceSpec(url, fmt, options, video=video, audio=audio, live=live, realtime=realtime, reconnect=reconnect,
                      label=f"{fmt}:{url}" if fmt else url)


def open_container(spec: SourceSpec, timeout_s: float = 10.0):
    if spec.format == "v4l2" and not os.path.exists(spec.url):
        found = sorted(glob.glob("/dev/video*"))
        raise SourceError(f"no camera at {spec.url}; " + (f"found {', '.join(found)}" if found else "no /dev/video* device exists"))
    if spec.format is None and "://" not in spec.url and not os.path.exists(spec.url):
        raise SourceError(f"input not found: {spec.url}")
    try:
        return av.open(spec.url, format=spec.format, options=dict(spec.options), timeout=(timeout_s, timeout_s))
    except av.FFmpegError as err:
        raise SourceError(f"cannot open {spec.describe()}: {redact(err)}") from None  # FFmpeg quotes the URL


@dataclass
class ReaderStats:
    frames: int = 0
    audio_samples: int = 0
    corrupt_packets: int = 0
    reconnects: int = 0
    discontinuities: int = 0  # timestamp jumps rebased
    format_changes: int = 0  # audio layout / rate changes mid-stream
    ended: bool = False
    error: str | None = None


class Reader(threading.Thread):
    """Decode one input until it ends (or `stop` is set); call on_frame(t, frame) / on_audio(t, samples)."""

    def __init__(self, spec: SourceSpec, on_frame: Callable | None, on_audio: Callable | None,
                 stop: threading.Event, sample_rate: int = 16000, start_at: float = 0.0,
                 on_raw_audio: Callable | None = None):
        super().__init__(daemon=True, name=f"reader:{spec.describe()}")
        self.spec = spec
        self.on_frame = on_frame if spec.video else None
        self.on_audio = on_audio if spec.audio else None
        self.stop = stop
        self.sample_rate = sample_rate
        self.on_raw_audio = on_raw_audio  # (t, av.AudioFrame) as decoded, before resampling (annotated copies)
        self.stats = ReaderStats()
        self.last_item = time.monotonic()  # when the reader last handed something on (the stall watchdog reads it)
        self.items = 0
        self.position = start_at  # stream time just past the last item handed on
        self.retired = False  # replaced after a stall: it must hand nothing more on, even if its read returns
        self.has_video = self.has_audio = False
        self._container = open_container(spec)  # open now, so a bad input fails before any thread starts
        self.has_video = bool(self._container.streams.video) and self.on_frame is not None
        self.has_audio = bool(self._container.streams.audio) and self.on_audio is not None
        self.last_item = time.monotonic()  # the watchdog counts from here: opening may wait for the first data

    def close(self) -> None:
        """Close an input that was opened but never started."""
        if self._container is not None and not self.is_alive():
            self._container.close()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as err:  # noqa: BLE001 — a reader that fails says why; the stream treats it as dead
            self.stats.error = self.stats.error or f"{self.spec.describe()}: {type(err).__name__}: {redact(err)}"
        finally:
            self.stats.ended = True

    def _run(self) -> None:
        self.last_item = time.monotonic()
        offset = self.position  # added on each loop / reconnect so time never goes backwards
        container = self._container
        backoff = 0.5
        while not self.stop.is_set() and not self.retired:
            before = self.items
            last = self._decode(container, offset)
            container.close()
            if self.items > before:  # it delivered: the next outage starts from a short wait again
                backoff = 0.5
            if self.stop.is_set() or self.retired:
                break
            if self.items == before and not self.spec.reconnect:  # opens but yields nothing: never loop on it
                self.stats.error = self.stats.error or f"{self.spec.describe()} gave no frame or audio"
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
                while container is None and not self.stop.is_set() and not self.retired:
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 8.0)
                    try:
                        container = open_container(self.spec)
                    except SourceError:
                        continue
                if container is None:
                    break
            if self.spec.reconnect and self.spec.live:  # the outage took real time: stay in step with the other inputs
                offset = max(offset, self.position + time.monotonic() - self.last_item)
        self.stats.ended = True

    def _decode(self, container, offset: float) -> float:
        """Decode until the end; → the time just past the last item, for the next loop's offset."""
        streams = []
        video = container.streams.video[0] if self.has_video and container.streams.video else None
        audio = container.streams.audio[0] if self.has_audio and container.streams.audio else None
        if video is not None:
            # frame threads each hold whole frames: beyond 1080p, decode with slice threads only
            big = (video.codec_context.width or 0) * (video.codec_context.height or 0) > 1920 * 1088
            video.thread_type = "SLICE" if big else "AUTO"
            streams.append(video)
        if audio is not None:
            streams.append(audio)
        if not streams:
            return offset
        resampler, audio_t = Resampler("fltp", None, self.sample_rate), None
        shift: dict[int, float] = {}  # per stream: added to its raw time → seconds since this pass began
        prev: dict[int, float] = {}  # per stream: its last time on the timeline
        jumps: dict[int, int] = {}
        last = offset
        wall0 = time.monotonic()
        frame_dur = 1.0 / float(video.average_rate or 25) if video is not None else 0.0
        try:
            for packet in container.demux(streams):
                if self.stop.is_set() or self.retired:
                    break
                try:
                    decoded = packet.decode()
                except av.FFmpegError:  # a corrupt packet costs its frames, never the stream
                    self.stats.corrupt_packets += 1
                    continue
                for frame in decoded:
                    if frame.time is None or self.retired:
                        continue
                    t = self._timeline(packet.stream.index, frame.time, offset, last, shift, prev, jumps)
                    if self.spec.realtime:
                        delay = wall0 + (t - offset) - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                    self.items += 1
                    self.last_item = time.monotonic()
                    self.position = max(self.position, t)
                    if packet.stream is video:
                        self.stats.frames += 1
                        self.on_frame(t, _bounded(frame))
                        last = max(last, t + frame_dur)
                    else:
                        self.stats.format_changes += resampler.follow(frame)  # a layout / rate change (broadcast TS)
                        if self.on_raw_audio is not None:
                            self.on_raw_audio(t, frame)
                        if audio_t is None or abs(t - audio_t) > 0.25:  # the first audio, or a real gap
                            audio_t = t
                        for out in resampler.resample(frame):  # a running sample clock: no seams between frames
                            samples = out.to_ndarray().mean(axis=0).astype(np.float32)
                            self.stats.audio_samples += samples.size
                            self.on_audio(audio_t, samples)
                            audio_t += samples.size / self.sample_rate
                            last = max(last, audio_t)
        except (av.FFmpegError, ValueError) as err:  # a stream that breaks off mid-way (truncated file, dropped connection)
            self.stats.corrupt_packets += 1
            self.stats.error = redact(err)
        return last


    def _timeline(self, stream: int, raw: float, offset: float, last: float, shift: dict, prev: dict, jumps: dict) -> float:
        """A stream's raw time on the reader's timeline. Streams of a container share one origin unless a stream
        starts far from the others (a wrapped MPEG-TS clock); a jump of more than JUMP_S within a stream is a
        discontinuity: that stream goes on from where it was, so nothing is scheduled for the time it skipped."""
        if stream not in shift:
            first = next(iter(shift.values()), None)
            aligned = first is not None and abs(raw + first - (last - offset)) <= JUMP_S
            shift[stream] = first if aligned else (last - offset) - raw
        t = offset + raw + shift[stream]
        if stream in prev and abs(t - prev[stream]) > JUMP_S:
            jumps[stream] = jumps.get(stream, 0) + 1
            self.stats.discontinuities = max(self.stats.discontinuities, jumps[stream])
            shift[stream] += prev[stream] - t
            t = prev[stream]
        prev[stream] = t
        return t


def bounded_size(width: int, height: int) -> tuple[int, int]:
    """The size a frame of width × height is reduced to: long side at most MAX_SIDE, even sides."""
    if max(width, height) <= MAX_SIDE:
        return width, height
    scale = MAX_SIDE / max(width, height)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def _bounded(frame):
    """A frame whose long side is at most MAX_SIDE (swscale, before it queues anywhere)."""
    size = bounded_size(frame.width, frame.height)
    return frame if size == (frame.width, frame.height) else frame.reformat(width=size[0], height=size[1])
