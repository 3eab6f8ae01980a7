"""Decoding media files with av: the sampled frames of a video and its audio as 16 kHz mono."""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np

from runtime.errors import EdgeError
from runtime.preprocess import frame_indices


class MediaError(EdgeError):
    """A media file that cannot be read; the message names the file and the reason."""


@dataclass
class Clip:
    frames: np.ndarray  # [num_frames, H, W, 3] uint8 RGB, the sampled frames at full size
    waveform: np.ndarray  # [T] float32, mono at the requested sample rate; empty when there is no audio
    duration_s: float
    num_video_frames: int
    has_audio: bool


def _open(path: str | os.PathLike):
    if not os.path.exists(path):
        raise MediaError(f"media file not found: {path}")
    try:
        return av.open(str(path))
    except av.FFmpegError as err:
        raise MediaError(f"cannot open {path}: {err}") from None


def _decode_frames(path, container, stream, wanted: set[int]) -> tuple[dict[int, np.ndarray], int]:
    picked: dict[int, np.ndarray] = {}
    count = 0
    for frame in container.decode(stream):
        if count in wanted:
            picked[count] = frame.to_ndarray(format="rgb24")
        count += 1
    return picked, count


def read_clip(path: str | os.PathLike, num_frames: int = 8, sample_rate: int = 16000) -> Clip:
    """Decode the `num_frames` uniformly sampled frames and the whole audio track of a media file.

    The frame count comes from the container when it states one, else from a counting pass. Multi-channel
    audio is averaged to mono after resampling, as the reference does.
    """
    try:
        with _open(path) as container:
            if not container.streams.video:
                raise MediaError(f"{path} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            total = stream.frames
            if total <= 0:  # containers such as raw H.264 or some WebM state no count
                _, total = _decode_frames(path, container, stream, set())
                container.seek(0)
            indices = frame_indices(total, num_frames) if total > 0 else []
            picked, counted = _decode_frames(path, container, stream, set(indices))
            if counted == 0:
                raise MediaError(f"{path}: no video frame could be decoded")
            if counted < total:  # the container over-stated its frame count: sample again from the real count
                container.seek(0)
                indices = frame_indices(counted, num_frames)
                picked, counted = _decode_frames(path, container, stream, set(indices))
            frames = np.stack([picked[i] for i in indices])
            duration = _duration(container, stream, counted)
        waveform, has_audio = read_audio(path, sample_rate, duration)
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


def read_audio(path: str | os.PathLike, sample_rate: int = 16000, duration_s: float | None = None):
    """→ (waveform [T] float32 mono at `sample_rate`, has_audio). A file with no audio gives an empty array.

    AAC adds encoder padding at the end; `duration_s` trims it so the clip sampling sees the true length.
    """
    with _open(path) as container:
        if not container.streams.audio:
            return np.zeros(0, np.float32), False
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=sample_rate)
        pieces = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                pieces.append(out.to_ndarray())
        for out in resampler.resample(None):
            pieces.append(out.to_ndarray())
    if not pieces:
        return np.zeros(0, np.float32), True
    waveform = np.concatenate(pieces, axis=1).mean(axis=0).astype(np.float32)
    if duration_s is not None:
        waveform = waveform[: int(round(duration_s * sample_rate))]
    return waveform, True
