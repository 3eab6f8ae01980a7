"""Decoding media files with av: the sampled frames of a video and its audio as 16 kHz mono.

Frames are reduced as they are decoded, as the stream's reader reduces them (long side at most 1,280 pixels,
swscale in the decoder's pixel format, then RGB), so a clip, a stream window, training and calibration see the
same pixels and an 8K file costs a few megabytes per frame, not a hundred. A bundle whose `image_size` is
larger than what that leaves on the short side keeps enough for it (short side at least `image_size`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np

from runtime.errors import EdgeError
from runtime.preprocess import clip_audio_spans, frame_indices
from runtime.resample import Resampler
from runtime.sources import MAX_SIDE, file_options


LONG_AUDIO_S = 120  # beyond this, a clip's audio keeps only the samples its clips use


class MediaError(EdgeError):
    """A media file that cannot be read; the message names the file and the reason."""


@dataclass
class Clip:
    frames: np.ndarray  # [num_frames, H, W, 3] uint8 RGB, the sampled frames (reduced: see frame_size)
    waveform: np.ndarray  # [T] float32, mono at the requested sample rate; empty when there is no audio
    duration_s: float
    num_video_frames: int
    has_audio: bool


def _open(path: str | os.PathLike):
    if not os.path.exists(path):
        raise MediaError(f"media file not found: {path}")
    try:
        return av.open(str(path), options=file_options())  # a file, read as a file: no playlist or concat
    except av.FFmpegError as err:
        raise MediaError(f"cannot open {path}: {err}") from None


def frame_size(width: int, height: int, image_size: int = 0) -> tuple[int, int]:
    """The size a decoded frame is reduced to: long side at most MAX_SIDE (the stream reader's bound, enough for
    the face detector and a crop), unless that leaves the short side under `image_size`; never enlarged; even."""
    scale = min(1.0, MAX_SIDE / max(width, height, 1))
    if image_size:
        scale = min(1.0, max(scale, image_size / max(min(width, height), 1)))
    if scale >= 1.0:
        return width, height
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def _rgb(frame, image_size: int) -> np.ndarray:
    size = frame_size(frame.width, frame.height, image_size)
    if size != (frame.width, frame.height):  # in the decoder's format first, as the stream reader does
        frame = frame.reformat(width=size[0], height=size[1])
    return frame.to_ndarray(format="rgb24")


def _decode_frames(path, container, stream, wanted: set[int], image_size: int = 0) -> tuple[dict[int, np.ndarray], int]:
    picked: dict[int, np.ndarray] = {}
    count = 0
    for frame in container.decode(stream):
        if count in wanted:
            picked[count] = _rgb(frame, image_size)
        count += 1
    return picked, count


def read_clip(path: str | os.PathLike, num_frames: int = 8, sample_rate: int = 16000, audio_spans=None,
              image_size: int = 0) -> Clip:
    """Decode the `num_frames` uniformly sampled frames and the audio track of a media file.

    The frame count comes from the container when it states one, else from a counting pass. Multi-channel
    audio is averaged to mono after resampling, as the reference does. `audio_spans(num_samples)` → the sample
    ranges the clips will use: only those are kept, so an hour-long file costs the memory of its clips.
    """
    try:
        with _open(path) as container:
            if not container.streams.video:
                raise MediaError(f"{path} has no video stream")
            stream = container.streams.video[0]
            # frame threads each hold whole frames: beyond 1080p, slice threads only (as the stream reader)
            big = (stream.codec_context.width or 0) * (stream.codec_context.height or 0) > 1920 * 1088
            stream.thread_type = "SLICE" if big else "AUTO"
            total = stream.frames
            if total <= 0:  # containers such as raw H.264 or some WebM state no count
                _, total = _decode_frames(path, container, stream, set())
                container.seek(0)
            indices = frame_indices(total, num_frames) if total > 0 else []
            picked, counted = _decode_frames(path, container, stream, set(indices), image_size)
            if counted == 0:
                raise MediaError(f"{path}: no video frame could be decoded")
            if counted < total:  # the container over-stated its frame count: sample again from the real count
                container.seek(0)
                indices = frame_indices(counted, num_frames)
                picked, counted = _decode_frames(path, container, stream, set(indices), image_size)
            frames = np.stack([picked[i] for i in indices])
            duration = _duration(container, stream, counted)
        waveform, has_audio = read_audio(path, sample_rate, duration, audio_spans)
    except av.FFmpegError as err:
        raise MediaError(f"cannot decode {path}: {err}") from None
    return Clip(frames, waveform, duration, counted, has_audio)


def _duration(container, stream, num_frames: int) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    rate = float(stream.average_rate or 25)
    return num_frames / rate


def read_audio(path: str | os.PathLike, sample_rate: int = 16000, duration_s: float | None = None, spans=None):
    """→ (waveform [T] float32 mono at `sample_rate`, has_audio). A file with no audio gives an empty array.

    AAC adds encoder padding at the end; `duration_s` trims it so the clip sampling sees the true length. With
    `duration_s` and `spans(num_samples)`, only the samples inside those ranges are stored: the rest of the
    array is zero pages the process never touches.
    """
    with _open(path) as container:
        if not container.streams.audio:
            return np.zeros(0, np.float32), False
        stream = container.streams.audio[0]
        resampler = Resampler("fltp", None, sample_rate)  # follows a layout or rate change mid-file
        total = int(round(duration_s * sample_rate)) if duration_s is not None else None
        keep = None
        if spans is not None and total and total > LONG_AUDIO_S * sample_rate:
            if stream.duration and stream.time_base:  # a shorter audio track
                total = min(total, int(stream.duration * stream.time_base * sample_rate))
            # MKV and MPEG-TS state no per-stream duration: the container's bounds the track, which otherwise
            # would be held whole (two hours of audio: 460 MB)
            keep = spans(total)
        pieces, waveform, position = [], (np.zeros(total, np.float32) if keep else None), 0

        def store(out):
            nonlocal position
            mono = out.to_ndarray().mean(axis=0).astype(np.float32)
            if waveform is None:
                pieces.append(mono)
            else:
                for start, end in keep:
                    lo, hi = max(start, position), min(end, position + mono.size, total)
                    if lo < hi:
                        waveform[lo:hi] = mono[lo - position:hi - position]
            position += mono.size

        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                store(out)
        for out in resampler.flush():
            store(out)
    if waveform is not None:  # a track that ends early stays as long as stated: the clip ranges hold, the end is silence
        return waveform if position else np.zeros(0, np.float32), True
    if not pieces:
        return np.zeros(0, np.float32), True
    waveform = np.concatenate(pieces)
    if total is not None:
        waveform = waveform[:total]
    return waveform, True


def read_clip_for(path: str | os.PathLike, prep) -> Clip:
    """A clip as a bundle's preprocessing reads it (frames to sample, sample rate, the audio its clips use):
    the one way training, calibration, the gate, the benchmarks and the runtime read a file."""
    return read_clip(path, prep.num_frames, prep.sample_rate, clip_audio_spans(prep), prep.image_size)
