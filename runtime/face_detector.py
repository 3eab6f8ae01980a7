"""Every face in a frame: MediaPipe's BlazeFace short-range detector (face_detection_short_range.tflite of
mediapipe 0.10.14, Apache-2.0, converted once to ONNX with tflite2onnx; runtime/face_models/ holds it and its
licence), run in ONNX Runtime, its anchors and box decoding in numpy as MediaPipe's graph does them.

The short-range model sees 128 × 128 pixels and finds faces that fill a fair part of its view, so a wide frame is
also read as overlapping square tiles: group photos' faces are an eighth of the frame wide. Boxes are mapped onto the
Haar cascade's geometry (`HAAR_FIT`), because the vision encoder of the embedded default was trained on Haar crops.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODEL = Path(__file__).parent / "face_models" / "blazeface_short_range.onnx"
SIZE = 128
SCORE = 0.5  # MediaPipe's min_score_thresh for this model, per candidate box
KEEP_SCORE = 0.6  # a face's best box must reach this: the many tiles' views let more 0.5 look-alikes through
NMS_IOU = 0.3  # MediaPipe's weighted NMS overlap
TILE_OVERLAP = 0.5  # a tile steps half its side, so a face cut by one tile's edge lies whole in the next
# Each face found is re-detected in a view of its own: REFINE_VIEW box widths wide (the face about 2/7 of the view,
# as a selfie camera shows it to the short-range model), REFINE_STEPS times, from the boxes whose centre lies within
# REFINE_REACH box widths of the face's.
REFINE_VIEW, REFINE_STEPS, REFINE_REACH = 3.5, 2, 0.25
# A BlazeFace box → the Haar box of the same face: centre shift (x, y) and side, as fractions of the BlazeFace box's
# width; the mean over the 4 faces both find in sample1 and sample3 of the face-api photos (sample5 held out) gave
# y −0.09 (the cascade's box sits higher, over the brows), side ×1.18; x (−0.06, its sign follows the head's turn) is 0.
HAAR_FIT = (0.0, -0.09, 1.18)


def anchors() -> np.ndarray:
    """[896, 2] anchor centres (x, y) in [0, 1]: MediaPipe's SSD anchors for the short-range model (strides 8, 16,
    16, 16; fixed size; one interpolated anchor per layer → 2 anchors per 16 × 16 cell, 6 per 8 × 8 cell)."""
    out = []
    for stride, per_cell in ((8, 2), (16, 6)):
        n = SIZE // stride
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], 1)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


class BlazeFace:
    def __init__(self, model: Path = MODEL, threads: int = 1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.anchors = anchors()

    def detect_square(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[S, S, 3] uint8 RGB (any S) → (boxes [n, 4] as x0, y0, x1, y1 in [0, 1], scores [n]) above SCORE."""
        import cv2

        x = cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1.0
        reg, cls = self.session.run(None, {self.input: x.transpose(2, 0, 1)[None]})
        scores = 1.0 / (1.0 + np.exp(-np.clip(cls[0, :, 0], -80, 80)))
        keep = scores >= SCORE
        raw, a = reg[0, keep, :4] / SIZE, self.anchors[keep]
        cx, cy = raw[:, 0] + a[:, 0], raw[:, 1] + a[:, 1]
        w, h = raw[:, 2], raw[:, 3]
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1), scores[keep]

    def faces(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """(x, y, w, h) of every face in full-frame pixels (Haar geometry), largest first."""
        return [box for box, _ in self.detect(rgb)]

    def detect(self, rgb: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """[H, W, 3] uint8 RGB → ((x, y, w, h) in full-frame pixels on the Haar geometry, score) per face, largest
        first."""
        H, W = rgb.shape[:2]
        boxes, scores = [], []
        for x0, y0, side in tiles(W, H):
            b, s = self.detect_square(square_view(rgb, x0, y0, side))
            boxes.append(b * side + [x0, y0, x0, y0])
            scores.append(s)
        found = innermost(weighted_nms(np.concatenate(boxes), np.concatenate(scores)))
        out = [(haar_box(self.refine(rgb, b[:4])), float(b[4])) for b in found]
        return sorted(out, key=lambda f: f[0][2] * f[0][3], reverse=True)

    def refine(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        """A face's box re-detected in a square view REFINE_VIEW of its widths wide, centred on it (REFINE_STEPS
        times): the box then depends on the face and its surroundings alone, not on which tile or frame size first
        found it — the same face in a group photo and cropped alone gets the same crop."""
        for _ in range(REFINE_STEPS):
            w = box[2] - box[0]
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            side = max(int(round(REFINE_VIEW * w)), 1)
            x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
            b, s = self.detect_square(square_view(rgb, x0, y0, side))
            b = b * side + [x0, y0, x0, y0]
            near = np.hypot((b[:, 0] + b[:, 2]) / 2 - cx, (b[:, 1] + b[:, 3]) / 2 - cy) < REFINE_REACH * w
            if not near.any():
                return box
            weight = s[near][:, None]
            box = (b[near] * weight).sum(0) / weight.sum()
        return box


def square_view(rgb: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """The side × side square of the frame whose top-left corner is (x0, y0), black where it reaches past the
    frame's edge (a tile at the border, a face's view near it)."""
    H, W = rgb.shape[:2]
    if x0 >= 0 and y0 >= 0 and x0 + side <= W and y0 + side <= H:
        return rgb[y0:y0 + side, x0:x0 + side]
    view = np.zeros((side, side, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(W, x0 + side), min(H, y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        view[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return view


def tiles(W: int, H: int) -> list[tuple[int, int, int]]:
    """(x0, y0, side) squares that read a W × H frame: the whole frame (padded square), then tiles of half the
    shorter side stepping by TILE_OVERLAP of their side."""
    out = [(0, 0, max(W, H))]
    side = min(W, H) // 2
    if side >= SIZE:
        step = max(1, int(side * (1 - TILE_OVERLAP)))
        for y in range(0, max(H - side, 0) + 1, step):
            for x in range(0, max(W - side, 0) + 1, step):
                out.append((x, y, side))
    return out


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> list[np.ndarray]:
    """MediaPipe's weighted non-maximum suppression: each cluster of overlapping boxes → their score-weighted mean
    [x0, y0, x1, y1] with the cluster's best score appended."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    done = np.zeros(len(boxes), bool)
    out = []
    for i in range(len(boxes)):
        if done[i]:
            continue
        overlap = iou_one(boxes[i], boxes) >= iou
        cluster = overlap & ~done
        done |= cluster
        w = scores[cluster][:, None]
        if scores[i] >= KEEP_SCORE:  # → [x0, y0, x1, y1, best score]
            out.append(np.append((boxes[cluster] * w).sum(0) / w.sum(), scores[i]))
    return out


def innermost(boxes: list[np.ndarray]) -> list[np.ndarray]:
    """Of boxes that hold most of a smaller one, the smaller: a face a coarse view saw small and placed loosely is
    the same face a finer tile saw closely."""
    kept: list[np.ndarray] = []
    for box in sorted(boxes, key=lambda b: float((b[2] - b[0]) * (b[3] - b[1]))):
        if all(_covered(k, box) < 0.5 for k in kept):
            kept.append(box)
    return kept


def _covered(small: np.ndarray, big: np.ndarray) -> float:
    """The fraction of `small`'s area inside `big`."""
    w = max(0.0, min(small[2], big[2]) - max(small[0], big[0]))
    h = max(0.0, min(small[3], big[3]) - max(small[1], big[1]))
    return w * h / max((small[2] - small[0]) * (small[3] - small[1]), 1e-9)


def iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1, y1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def haar_box(b: np.ndarray) -> tuple[int, int, int, int]:
    """A BlazeFace box (x0, y0, x1, y1) → the square (x, y, w, h) the Haar cascade would draw round the same face."""
    dx, dy, scale = HAAR_FIT
    w = b[2] - b[0]
    side = w * scale
    cx, cy = (b[0] + b[2]) / 2 + dx * w, (b[1] + b[3]) / 2 + dy * w
    return int(round(cx - side / 2)), int(round(cy - side / 2)), int(round(side)), int(round(side))
