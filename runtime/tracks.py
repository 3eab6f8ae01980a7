"""Faces linked over time: every face of each sampled frame (runtime/face_detector.py) is given a track id by
ByteTrack, as `supervision` implements it (MIT; extra `people`). A face that is missed for a few sampled frames, or
that leaves and comes back within `memory_s`, keeps its id where ByteTrack can tell it is the same box.

supervision 0.31 dropped ByteTrack for its `trackers` package, which requires the full opencv-python wheel — a second
cv2 that overwrites the headless one this project uses — so the extra pins supervision below 0.31.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

MEMORY_S = 3.0  # how long a lost face's id waits for it to come back


class TrackerMissing(ImportError):
    pass


@dataclass(frozen=True)
class Face:
    id: int  # track id
    box: tuple[int, int, int, int]  # (x, y, w, h) in frame pixels, Haar geometry
    score: float


class Tracks:
    """Per sampled frame (fed once each, in time order): the faces with their track ids."""

    def __init__(self, detector, fps: float, memory_s: float = MEMORY_S):
        """`detector`: anything with `detect(rgb) → [(box, score)]`; `fps`: sampled frames per second."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from supervision import ByteTrack, Detections
        except ImportError:
            raise TrackerMissing("tracking several people needs supervision < 0.31: "
                                 "pip install 'affectgpt-edge[people]'") from None
        self.detector, self.Detections = detector, Detections
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated upstream in favour of a package that clashes (see above)
            self.tracker = ByteTrack(frame_rate=max(1, round(fps)), lost_track_buffer=max(1, math.ceil(memory_s * fps)),
                                     minimum_consecutive_frames=1)
        self.frames: dict[int, list[Face]] = {}  # frame key (grid ms) → its faces
        self.raw: dict[int, list[tuple[int, int, int, int]]] = {}  # frame key → the detector's own boxes, largest first
        self.last_key: int | None = None

    def update(self, key: int, rgb: np.ndarray) -> list[Face]:
        """The faces of the frame at grid time `key` (ms), tracked; a key seen before is looked up, not tracked again."""
        if key in self.frames:
            return self.frames[key]
        if self.last_key is not None and key < self.last_key:
            return []  # a frame older than what the tracker has seen (a window's out-of-order copy) has no track
        found = self.detector.detect(rgb)
        self.raw[key] = [box for box, _ in found]
        faces: list[Face] = []
        if found:
            xyxy = np.array([[x, y, x + w, y + h] for (x, y, w, h), _ in found], np.float32)
            scores = np.array([s for _, s in found], np.float32)
            result = self.tracker.update_with_detections(
                self.Detections(xyxy=xyxy, confidence=scores, class_id=np.zeros(len(found), int)))
            for (x0, y0, x1, y1), tid, score in zip(result.xyxy, result.tracker_id, result.confidence):
                box = (int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)))
                faces.append(Face(int(tid), box, float(score)))
        else:
            self.tracker.update_with_detections(self.Detections.empty())
        faces.sort(key=lambda f: f.box[2] * f.box[3], reverse=True)
        self.frames[key] = faces
        self.last_key = key
        return faces

    def forget(self, before: int) -> None:
        """Drop the faces of frames before grid time `before` (no later window holds them)."""
        self.frames = {k: v for k, v in self.frames.items() if k >= before}
        self.raw = {k: v for k, v in self.raw.items() if k >= before}
