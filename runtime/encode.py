"""The one encode path: frames and waveform in, fused rows out.

Faces are cropped exactly when the bundle's preprocessing says so (or an explicit override), then the
shared preprocessing makes the encoders' inputs, and the encoders make the features and the fused rows.
The clip pipeline, the stream, the accuracy gate, INT8 calibration, the latency benchmark and the held-out
evaluation all go through here. The stream's reuse of features across overlapping windows is `FeatureReuse`,
a lookup wrapped around the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

from runtime.encoders import Encoders
from runtime.face import crop_box
from runtime.manifest import Preprocessing
from runtime.preprocess import cut_clips, normalize_clips, pixel_values
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


def crop_faces(frames, detector, margin: float) -> tuple[list, list[bool] | None]:
    """Each frame's largest-face crop (the full frame when none) and whether a face was found; frames as
    they are, and None, without a detector."""
    if detector is None:
        return list(frames), None
    crops = [detector.crop(f, margin) for f in frames]
    return [c for c, _ in crops], [ok for _, ok in crops]


def unseen_face(face: np.ndarray, found: list[bool] | None, no_face: str = "absent") -> np.ndarray:
    """The window's face features, or zeros when the bundle says a faceless window has vision absent
    (preprocessing.no_face "absent") and the detector ran and found a face in none of its frames: then a full
    frame read by an expression network is no evidence of an expression, so the model answers as with vision
    taken away (the ablation's zeros) rather than from whatever the frame resembles."""
    return np.zeros_like(face) if vision_absent(found, no_face) else face


def vision_absent(found: list[bool] | None, no_face: str) -> bool:
    """Whether a window's vision is taken away: the bundle says "absent" and the detector ran and found no face."""
    return no_face == "absent" and found is not None and not any(found)


@dataclass
class EncoderInputs:
    pixels: np.ndarray  # [T, 3, S, S] float32
    clips: np.ndarray  # [K, samples] float32
    faces: list[bool] | None  # per frame: face found (None: faces are not cropped)
    no_face: str = "frame"  # preprocessing.no_face: what a window without any face gets


@dataclass
class Features:
    face: np.ndarray  # [T, Dv]
    audio: np.ndarray  # [K, Da]
    fused: np.ndarray  # [rows, H]: the multi, audio and face rows at the LLM's width
    faces: list[bool] | None = None  # per frame: face found (None: faces are not cropped)
    box: tuple[int, int, int, int] | None = None  # the largest face in the window's last frame (FeatureReuse)


def clip_inputs(waveform: np.ndarray, prep: Preprocessing) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """[T] float32 mono at prep.sample_rate → (clips [K, samples] normalised, their spans in the waveform)."""
    raw, spans = cut_clips(waveform, prep)
    return normalize_clips(raw, prep), spans


def encoder_inputs(frames, waveform: np.ndarray, prep: Preprocessing, face_crop: bool | None = None,
                   watch: Stopwatch | None = None) -> EncoderInputs:
    """RGB frames (any sizes) and a mono waveform at prep.sample_rate → the encoders' inputs."""
    watch = watch or Stopwatch()
    crops, found = crop_faces(frames, face_detector(prep, face_crop), prep.face_margin)
    watch.lap("face")
    inputs = EncoderInputs(pixel_values(crops, prep), clip_inputs(waveform, prep)[0], found, prep.no_face)
    watch.lap("preprocess")
    return inputs


def encode(encoders: Encoders, inputs: EncoderInputs, watch: Stopwatch | None = None) -> Features:
    """Encoder inputs → per-frame and per-clip features and the fused rows (vision / audio / fusion times)."""
    watch = watch or Stopwatch()
    face = unseen_face(encoders.encode_frames(inputs.pixels), inputs.faces, inputs.no_face)
    watch.lap("vision")
    audio = encoders.encode_clips(inputs.clips)
    watch.lap("audio")
    fused = encoders.fuse(face, audio)
    watch.lap("fusion")
    return Features(face, audio, fused, inputs.faces)


def frame_size(frame) -> tuple[int, int]:
    """(width, height) of a decoded frame (av.VideoFrame) or an RGB array, without converting it."""
    return (frame.width, frame.height) if isinstance(frame, av.VideoFrame) else (frame.shape[1], frame.shape[0])


def rgb_array(frame) -> np.ndarray:
    """A decoded frame (av.VideoFrame) or an RGB array → [H, W, 3] uint8 RGB."""
    return frame.to_ndarray(format="rgb24") if isinstance(frame, av.VideoFrame) else frame


class FeatureReuse:
    """`encode()` for overlapping windows of one stream: each frame and audio clip is cropped, preprocessed and
    encoded once, then looked up — frames by their grid time (ms), clips by their absolute first sample.

    With the "video" normalisation scope a clip is normalised over its window's clips together, so its
    features belong to that window and are looked up only within it. A window without video, or in which no
    frame has a face, gets zero face features (as the ablation does); one without audio gets the features of
    digital silence."""

    def __init__(self, encoders: Encoders, prep: Preprocessing, detector, vision_dim: int, enabled: bool = True):
        self.encoders, self.prep, self.detector = encoders, prep, detector
        self.vision_dim = vision_dim
        self.enabled = enabled
        # (frame key, RGB) → the largest face's box or None, in place of the detector: the people step's detections,
        # so a frame several people are tracked in is detected once
        self.largest_at = None
        self.boxes: dict[int, tuple[int, int, int, int] | None] = {}  # frame key → its largest face's box
        self.frames: dict[int, tuple[np.ndarray, bool | None]] = {}
        self.clips: dict[tuple[int, ...], np.ndarray] = {}
        self._silence: np.ndarray | None = None

    def encode(self, frames, frame_keys: list[int], waveform: np.ndarray | None, audio_offset: int,
               window_id: int, watch: Stopwatch | None = None) -> Features:
        """frames (av.VideoFrame or [H, W, 3] uint8; converted only when not yet encoded) with their grid times, the window's waveform (None: no audio) starting at
        absolute sample `audio_offset` → Features, as `encode(encoder_inputs(frames, waveform))` gives them."""
        watch = watch or Stopwatch()
        todo = dict((k, f) for k, f in zip(frame_keys, frames) if k not in self.frames)  # one per grid time
        rgbs = {k: rgb_array(f) for k, f in todo.items()}
        if self.detector is not None:  # crop_faces' crops, keeping each box for the outputs
            locate = self.largest_at or (lambda key, rgb: self.detector.largest(rgb))
            boxes = {k: locate(k, rgb) for k, rgb in rgbs.items()}
            self.boxes.update(boxes)
            crops = [rgb if boxes[k] is None else crop_box(rgb, boxes[k], self.prep.face_margin) for k, rgb in rgbs.items()]
            found = [boxes[k] is not None for k in rgbs]
        else:
            crops, found = list(rgbs.values()), None
        watch.lap("face")
        pixels = pixel_values(crops, self.prep) if crops else None
        if waveform is not None:
            clips, spans = clip_inputs(waveform, self.prep)
            per_window = (window_id,) if self.prep.audio_norm_scope == "video" else ()
            clip_keys = [(audio_offset + s, min(e, waveform.size) - s, *per_window) for s, e in spans]
            need = [i for i, key in enumerate(clip_keys) if key not in self.clips]
        else:
            clip_keys, need = [], []
        watch.lap("preprocess")
        if pixels is not None:
            for key, feature, ok in zip(todo, self.encoders.encode_frames(pixels), found or [None] * len(todo)):
                self.frames[key] = (feature, ok)
        watch.lap("vision")
        if need:
            for i, feature in zip(need, self.encoders.encode_clips(clips[need])):
                self.clips[clip_keys[i]] = feature
        watch.lap("audio")
        audio = np.stack([self.clips[k] for k in clip_keys]) if waveform is not None else self.silence()
        if frame_keys:
            face = np.stack([self.frames[k][0] for k in frame_keys])
            flags = [self.frames[k][1] for k in frame_keys]
        else:
            face, flags = np.zeros((self.prep.num_frames, self.vision_dim), np.float32), []
        if self.detector is not None:
            face = unseen_face(face, flags, self.prep.no_face)
        fused = self.encoders.fuse(face, audio)
        watch.lap("fusion")
        box = self.boxes.get(frame_keys[-1]) if frame_keys else None
        self._forget(frame_keys, audio_offset if waveform is not None else None)
        return Features(face, audio, fused, None if self.detector is None else flags, box)

    def silence(self) -> np.ndarray:
        """[K, Da] audio features of digital silence, computed once."""
        if self._silence is None:
            zeros = np.zeros(self.prep.clip_samples, np.float32)
            self._silence = self.encoders.encode_clips(clip_inputs(zeros, self.prep)[0])
        return self._silence

    def _forget(self, frame_keys: list[int], audio_offset: int | None) -> None:
        """Keep only what later windows can share: frames after this window's first, clips likewise."""
        if not self.enabled:
            self.frames, self.clips, self.boxes = {}, {}, {}
            return
        if frame_keys:
            self.frames = {k: v for k, v in self.frames.items() if k > frame_keys[0]}
            self.boxes = {k: v for k, v in self.boxes.items() if k > frame_keys[0]}
        if audio_offset is not None:
            self.clips = {k: v for k, v in self.clips.items() if k[0] > audio_offset}
