"""Face crop before the vision encoder (the reference encodes face crops): the largest face the detector finds, as
a square with a margin; the full frame when there is none.

The detector is BlazeFace (runtime/face_detector.py), on every path that crops a face: the stream, training's
features, the photo readings. It finds the corpus's drawn faces in every frame where OpenCV's Haar cascade found
one in nine, so training sees faces cropped as the device crops them; its boxes keep the cascade's geometry.
`HaarCascade` stays for comparison (benchmarks.people). OpenCV is optional (extra `face`: opencv-python-headless < 5).
"""

from __future__ import annotations

import numpy as np

MARGIN = 0.25  # around the detected box (a bundle says its own: preprocessing.face_margin)
DETECT_WIDTH = 320  # the cascade detects on a downscaled grey copy; crop from the full frame


class LargestFace:
    """The largest face of `faces()` and its crop."""

    def faces(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        raise NotImplementedError

    def largest(self, rgb: np.ndarray) -> tuple[int, int, int, int] | None:
        """(x, y, w, h) of the largest face in full-frame pixels, or None."""
        boxes = self.faces(rgb)
        return boxes[0] if boxes else None

    def crop(self, rgb: np.ndarray, margin: float = MARGIN) -> tuple[np.ndarray, bool]:
        """→ (square crop around the largest face, True), or (the full frame, False)."""
        box = self.largest(rgb)
        if box is None:
            return rgb, False
        return crop_box(rgb, box, margin), True


class FaceDetector(LargestFace):
    """The device's face detector (BlazeFace short-range, tiled)."""

    def __init__(self):
        try:
            import cv2  # noqa: F401  (BlazeFace resizes with it)
        except ImportError:
            raise ImportError("face crops need OpenCV: pip install 'affectgpt-edge[face]'") from None
        from runtime.face_detector import BlazeFace

        self.blaze = BlazeFace()

    def faces(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """(x, y, w, h) of every face in full-frame pixels, largest first."""
        return self.blaze.faces(rgb)


class HaarCascade(LargestFace):
    """OpenCV's frontal-face Haar cascade (the detector before BlazeFace; kept to compare with)."""

    def __init__(self):
        try:
            import cv2
        except ImportError:
            raise ImportError("face crops need OpenCV: pip install 'affectgpt-edge[face]'") from None
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cv2 = cv2
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise ImportError(f"OpenCV has no Haar cascade at {path} (opencv-python-headless >= 5 dropped them)")

    def faces(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """(x, y, w, h) of every face in full-frame pixels, largest first."""
        h, w = rgb.shape[:2]
        scale = min(1.0, DETECT_WIDTH / w)
        small = self.cv2.resize(rgb, (int(w * scale), int(h * scale))) if scale < 1 else rgb
        grey = self.cv2.cvtColor(small, self.cv2.COLOR_RGB2GRAY)
        found = self.cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        boxes = [(int(x / scale), int(y / scale), int(fw / scale), int(fh / scale)) for x, y, fw, fh in found]
        return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)


def crop_box(rgb: np.ndarray, box: tuple[int, int, int, int], margin: float = MARGIN) -> np.ndarray:
    """The square around a face box (x, y, w, h), grown by `margin` of its side per side and clipped to the frame."""
    x, y, w, h = box
    side = int(max(w, h) * (1 + 2 * margin))
    cx, cy = x + w // 2, y + h // 2
    H, W = rgb.shape[:2]
    x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
    x1, y1 = min(W, x0 + side), min(H, y0 + side)
    return np.ascontiguousarray(rgb[y0:y1, x0:x1])


def inside(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """A face box (x, y, w, h) cut to the frame: what an output reports (a detector's box may reach past an edge)."""
    x, y, w, h = box
    x0, y0 = min(max(0, x), width), min(max(0, y), height)
    x1, y1 = min(max(x0, x + w), width), min(max(y0, y + h), height)
    return x0, y0, x1 - x0, y1 - y0
