"""Media → encoder input, the one implementation that training and inference share.

Frames: `num_frames` indices sampled uniformly (floor(k·vlen/n)), each resized straight to a square
`image_size` (aspect ratio not kept, as the reference's decoder does) and normalised with CLIP mean / std.
Audio: 16 kHz mono, zero-padded to one clip, cut into `num_clips` clips of `clip_seconds` whose starts are
evenly spaced over [0, duration − clip_seconds] (pytorchvideo's ConstantClipsPerVideoSampler), normalised to
zero mean and unit variance (Wav2Vec2FeatureExtractor) over all clips together or per clip, as the bundle says.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from runtime.manifest import Preprocessing


def frame_indices(num_video_frames: int, num_frames: int = 8) -> list[int]:
    """Indices of the frames to encode: floor(k·vlen/n); a video shorter than n repeats its last frame."""
    if num_video_frames <= 0:
        raise ValueError("the video has no frames")
    if num_video_frames < num_frames:
        return list(range(num_video_frames)) + [num_video_frames - 1] * (num_frames - num_video_frames)
    return [k * num_video_frames // num_frames for k in range(num_frames)]


def clip_spans(num_samples: int, prep: Preprocessing) -> list[tuple[int, int]]:
    """Sample ranges [start, end) of the audio clips, for a waveform already padded to one clip."""
    sr = prep.sample_rate
    duration = Fraction(num_samples, sr)
    clip = Fraction(prep.clip_seconds)
    max_start = max(duration - clip, Fraction(0))
    step = max_start / max(prep.num_clips - 1, 1)
    spans = []
    for k in range(prep.num_clips):
        start = step * k
        spans.append((int(start * sr), int((start + clip) * sr)))
    return spans


def clip_audio_spans(prep: Preprocessing):
    """For read_clip: the sample ranges the clips of a waveform of n samples will use."""
    return lambda n: clip_spans(max(n, prep.clip_samples), prep)


def resize_rgb(image: np.ndarray, size: int) -> np.ndarray:
    """[H, W, 3] uint8 → [size, size, 3] uint8, bilinear (FFmpeg's swscale through av)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an [H, W, 3] uint8 image, got {image.dtype} {list(image.shape)}")
    if image.shape[0] == size and image.shape[1] == size:
        return image
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return frame.reformat(width=size, height=size, interpolation="BILINEAR").to_ndarray()


def pixel_values(frames, prep: Preprocessing) -> np.ndarray:
    """N RGB uint8 frames [H, W, 3] (an array or a list; any sizes) → [N, 3, S, S] float32, normalised."""
    frames = np.stack([resize_rgb(f, prep.image_size) for f in frames])
    if prep.channel_order == "bgr":
        frames = frames[..., ::-1]
    x = frames.astype(np.float32) / 255.0
    x = (x - np.asarray(prep.image_mean, np.float32)) / np.asarray(prep.image_std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def normalize_clips(clips: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """[K, samples] → zero mean, unit variance (when the preprocessing asks for it): over all K clips at once
    (scope "video", Wav2Vec2FeatureExtractor called on the [K, samples] tensor as the reference does) or per clip."""
    clips = np.asarray(clips, np.float32)
    if prep.audio_normalize:
        axis = None if prep.audio_norm_scope == "video" else 1
        mean = clips.mean(axis=axis, keepdims=True)
        var = clips.var(axis=axis, keepdims=True)
        clips = (clips - mean) / np.sqrt(var + 1e-7)
    return clips.astype(np.float32)


def cut_clips(waveform: np.ndarray, prep: Preprocessing) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """[T] float32 mono → (raw clips [num_clips, clip_samples], their spans in the padded waveform)."""
    waveform = np.asarray(waveform, np.float32).reshape(-1)
    n = prep.clip_samples
    if waveform.size < n:
        waveform = np.pad(waveform, (0, n - waveform.size))
    spans = clip_spans(waveform.size, prep)
    clips = np.zeros((prep.num_clips, n), np.float32)
    for k, (start, end) in enumerate(spans):
        piece = waveform[start:end]
        clips[k, : piece.size] = piece
    return clips, spans


def audio_clips(waveform: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """[T] float32 mono at prep.sample_rate → [num_clips, clip_samples] float32, ready for the audio encoder."""
    return normalize_clips(cut_clips(waveform, prep)[0], prep)
