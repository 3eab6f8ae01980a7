"""Everyone in view, window by window: the tracked faces of a window's sampled frames (runtime/tracks.py), the
largest `max_people` of them, each person's face crops through the vision encoder — all crops of all people in one
call, each (frame, person) encoded once across overlapping windows — and fused with the window's audio features.

A person missed in some of the window's frames takes, there, their crop from the nearest frame they were seen in (the
encoder always gets the bundle's frame count). Crops keep the geometry the default was trained on: the detector's
boxes are on the Haar cascade's geometry, grown by runtime/face.py's margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.encode import frame_size, rgb_array
from runtime.face import crop_box, inside
from runtime.preprocess import pixel_values
from runtime.timing import Stopwatch
from runtime.tracks import Face, Tracks

# Two cores: a batch of 2 people cost 1.4× one answer, 4 people 1.9× (wall; benchmarks/people.py), so 3 stays well
# inside twice the single-person window while covering a driver and two passengers, or a small group at a kiosk.
DEFAULT_MAX_PEOPLE = 3
MOUTH_SIZE = (24, 12)  # (w, h) grey pixels the mouth region is compared at


@dataclass
class WindowPerson:
    id: int
    box: tuple[int, int, int, int]  # (x, y, w, h) on the last frame of the window the person was seen in
    frames: int  # the window's sampled frames the person was seen in
    area: float  # mean box area over those frames (the ranking: largest first)
    mouth_motion: float | None  # mean change of the mouth region between seen frames, 0–1; None: seen once
    fused: np.ndarray | None = None  # [rows, H] when the window is answered per person


class PeopleFeatures:
    def __init__(self, encoders, prep, tracks: Tracks, max_people: int):
        self.encoders, self.prep, self.tracks, self.max_people = encoders, prep, tracks, max_people
        self.crops: dict[tuple[int, int], np.ndarray] = {}  # (frame key, track id) → vision feature [Dv]
        self.mouths: dict[tuple[int, int], np.ndarray] = {}  # (frame key, track id) → grey mouth patch

    def observe(self, key: int, rgb: np.ndarray) -> list:
        """The frame's tracked faces — detected and tracked once per grid time — and their mouth patches."""
        faces = self.tracks.frames.get(key)
        if faces is None:
            faces = self.tracks.update(key, rgb)
            for face in faces:
                self.mouths[(key, face.id)] = mouth_patch(rgb, face.box)
        return faces

    def largest_at(self, key: int, rgb: np.ndarray) -> tuple[int, int, int, int] | None:
        """The largest face's box in this frame, as the single-person detector gives it (the detector's own box, not the
        tracker's smoothed one), from the detection the tracker made: a frame is detected once."""
        self.observe(key, rgb)
        boxes = self.tracks.raw.get(key)
        if boxes is None:  # a frame older than the tracker's last: detected, not tracked
            boxes = [box for box, _ in self.tracks.detector.detect(rgb)]
        return boxes[0] if boxes else None

    def people(self, frames, frame_keys: list[int], watch: Stopwatch | None = None) -> list[WindowPerson]:
        """The window's tracked people, largest first, at most max_people (frames: av.VideoFrame or RGB arrays)."""
        watch = watch or Stopwatch()
        seen: dict[int, list[tuple[int, Face]]] = {}
        for i, (key, frame) in enumerate(zip(frame_keys, frames)):
            faces = self.tracks.frames.get(key)
            if faces is None:
                faces = self.observe(key, rgb_array(frame))
            for face in faces:
                seen.setdefault(face.id, []).append((i, face))
        watch.lap("tracks")
        out = []
        for tid, hits in seen.items():
            motions = [float(np.mean(np.abs(self.mouths[(frame_keys[a], tid)] - self.mouths[(frame_keys[b], tid)])))
                       for (a, _), (b, _) in zip(hits, hits[1:])
                       if (frame_keys[a], tid) in self.mouths and (frame_keys[b], tid) in self.mouths]
            out.append(WindowPerson(tid, inside(hits[-1][1].box, *frame_size(frames[hits[-1][0]])), len(hits),
                                    float(np.mean([f.box[2] * f.box[3] for _, f in hits])),
                                    float(np.mean(motions)) if motions else None))
        out.sort(key=lambda p: p.area, reverse=True)
        return out[:self.max_people]

    def encode(self, people: list[WindowPerson], frames, frame_keys: list[int], audio: np.ndarray,
               watch: Stopwatch | None = None) -> None:
        """Each person's fused rows [rows, H] (set on `fused`) from their face crops and the window's audio features
        [K, Da]; every crop not yet encoded goes through the vision encoder in one call."""
        watch = watch or Stopwatch()
        plan = {p.id: self._nearest_seen(p.id, frame_keys) for p in people}
        todo = sorted({(frame_keys[i], tid) for tid, idx in plan.items() for i in idx} - self.crops.keys())
        if todo:
            index = {k: i for i, k in enumerate(frame_keys)}
            rgb: dict[int, np.ndarray] = {}
            crops = []
            for key, tid in todo:
                if key not in rgb:
                    rgb[key] = rgb_array(frames[index[key]])
                box = next(f.box for f in self.tracks.frames[key] if f.id == tid)
                crops.append(crop_box(rgb[key], box, self.prep.face_margin))
            pixels = pixel_values(crops, self.prep)
            watch.lap("people_preprocess")
            for item, feature in zip(todo, self.encoders.encode_frames(pixels)):
                self.crops[item] = feature
        watch.lap("people_vision")
        for p in people:
            face = np.stack([self.crops[(frame_keys[i], p.id)] for i in plan[p.id]])
            p.fused = self.encoders.fuse(face, audio)
        watch.lap("people_fusion")

    def _nearest_seen(self, tid: int, frame_keys: list[int]) -> list[int]:
        """Per frame of the window, the index of the nearest frame the person was seen in."""
        seen = [i for i, k in enumerate(frame_keys) if any(f.id == tid for f in self.tracks.frames.get(k, ()))]
        return [min(seen, key=lambda j: (abs(j - i), j)) for i in range(len(frame_keys))]

    def forget(self, first_key: int | None) -> None:
        """Keep what a later window can share: the frames from this window's second on."""
        if first_key is None:
            return
        self.crops = {k: v for k, v in self.crops.items() if k[0] > first_key}
        self.mouths = {k: v for k, v in self.mouths.items() if k[0] > first_key}
        self.tracks.forget(first_key + 1)


def mouth_patch(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The lower third of a Haar-geometry face box (the mouth and chin), grey, at MOUTH_SIZE, in 0–1."""
    import cv2

    x, y, w, h = box
    H, W = rgb.shape[:2]
    x0, x1 = max(0, x + w // 5), min(W, x + w - w // 5)
    y0, y1 = max(0, y + 2 * h // 3), min(H, y + h)
    if x1 <= x0 or y1 <= y0:
        return np.zeros(MOUTH_SIZE[::-1], np.float32)
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    patch = cv2.resize(grey, MOUTH_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return patch - patch.mean()  # lighting that shifts the whole face is not motion


SPEAKING_MOTION = 0.02  # mean change of the mouth patch between sampled frames that counts as a moving mouth


def speaking(people: list[WindowPerson], speech: bool | None) -> list[bool | None]:
    """Who is likely speaking: the window holds voice (`speech`, the VAD's word) and the person's mouth moves most,
    above SPEAKING_MOTION. None where it cannot be told: no voice activity detection, or a person seen in one frame."""
    if speech is None:
        return [None] * len(people)
    if not speech:
        return [False] * len(people)
    motions = [p.mouth_motion for p in people]
    top = max((m for m in motions if m is not None), default=None)
    return [None if m is None else bool(m >= SPEAKING_MOTION and m == top) for m in motions]
