"""The one encode path: frames and waveform in, fused rows out.

Faces are cropped exactly when the bundle's preprocessing says so (or an explicit override), then the
shared preprocessing makes the encoders' inputs, and the encoders make the features and the fused rows.
The clip pipeline, the accuracy gate, INT8 calibration, the latency benchmark and the held-out evaluation
all go through here; the stream reuses `crop_faces` and the preprocessing for its per-frame feature cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.encoders import Encoders
from runtime.manifest import Preprocessing
from runtime.preprocess import audio_clips, pixel_values
from runtime.timing import Stopwatch

_detector = None


def face_detector(prep: Preprocessing, face_crop: bool | None = None):
    """The shared face detector when faces are cropped (`face_crop`, else the bundle's preprocessing), else None.
    Raises ImportError with the fix when OpenCV is missing."""
    global _detector
    if not (prep.face_crop if face_crop is None else face_crop):
        return None
    if _detector is None:
        from runtime.face import FaceDetector

        _detector = FaceDetector()
    return _detector


def crop_faces(frames, detector) -> tuple[list, list[bool] | None]:
    """Each frame's largest-face crop (the full frame when none) and whether a face was found; frames as
    they are, and None, without a detector."""
    if detector is None:
        return list(frames), None
    crops = [detector.crop(f) for f in frames]
    return [c for c, _ in crops], [ok for _, ok in crops]


@dataclass
class EncoderInputs:
    pixels: np.ndarray  # [T, 3, S, S] float32
    clips: np.ndarray  # [K, samples] float32
    faces: list[bool] | None  # per frame: face found (None: faces are not cropped)


@dataclass
class Features:
    face: np.ndarray  # [T, Dv]
    audio: np.ndarray  # [K, Da]
    fused: np.ndarray  # [rows, H]: the multi, audio and face rows at the LLM's width


def encoder_inputs(frames, waveform: np.ndarray, prep: Preprocessing, face_crop: bool | None = None,
                   watch: Stopwatch | None = None) -> EncoderInputs:
    """RGB frames (any sizes) and a mono waveform at prep.sample_rate → the encoders' inputs."""
    watch = watch or Stopwatch()
    frames, found = crop_faces(frames, face_detector(prep, face_crop))
    watch.lap("face")
    inputs = EncoderInputs(pixel_values(frames, prep), audio_clips(waveform, prep), found)
    watch.lap("preprocess")
    return inputs


def encode(encoders: Encoders, inputs: EncoderInputs, watch: Stopwatch | None = None) -> Features:
    """Encoder inputs → per-frame and per-clip features and the fused rows (vision / audio / fusion times)."""
    watch = watch or Stopwatch()
    face = encoders.encode_frames(inputs.pixels)
    watch.lap("vision")
    audio = encoders.encode_clips(inputs.clips)
    watch.lap("audio")
    fused = encoders.fuse(face, audio)
    watch.lap("fusion")
    return Features(face, audio, fused)
