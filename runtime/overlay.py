"""The answers drawn on a picture: the face box and the current labels and sentiment (Pillow, extra `serve`).
Shared by the dashboard's live picture and the annotated copy of a recording."""

from __future__ import annotations

import numpy as np

COLORS = {"positive": (46, 204, 113), "negative": (231, 76, 60), "neutral": (220, 220, 220)}


def _pillow():
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise ImportError("drawing the answers needs Pillow: pip install 'affectgpt-edge[serve]'") from None
    return Image, ImageDraw, ImageFont


def draw(rgb: np.ndarray, box: tuple[int, int, int, int] | None, labels: list[str], sentiment: str = "neutral",
         span: tuple[float, float] | None = None, people: list[dict] | None = None, scale: float = 1.0):
    """→ a PIL image of `rgb` [H, W, 3] with the face box (x, y, w, h) and a caption band of the labels and the
    time span (start, end s) of the window they describe: an answer comes a window after the face it saw.
    With two or more `people` (a record's list; boxes in frame pixels, × `scale` to this picture), each gets their
    own box, tagged with their id and labels, instead of the single face box."""
    Image, ImageDraw, ImageFont = _pillow()
    image = Image.fromarray(np.ascontiguousarray(rgb))
    pen = ImageDraw.Draw(image)
    color = COLORS.get(sentiment, COLORS["neutral"])
    width = max(2, image.width // 320)
    size = max(12, image.height // 18)
    font = _font(ImageFont, size)
    if people and len(people) > 1:
        tag_font = _font(ImageFont, max(10, size * 2 // 3))
        for person in people:
            x, y, w, h = (v * scale for v in person["box"])
            tint = COLORS.get(person.get("sentiment"), COLORS["neutral"])
            pen.rectangle([x, y, x + w, y + h], outline=tint, width=width + 2 * bool(person.get("primary")))
            tag = f"#{person['id']} " + (", ".join(person.get("labels") or []) or "…")
            left, top, right, bottom = pen.textbbox((x, y), tag, font=tag_font, anchor="lb")
            pen.rectangle([left - 2, top - 2, right + 2, bottom + 2], fill=(0, 0, 0))
            pen.text((x, y), tag, fill=tint, font=tag_font, anchor="lb")
    elif box is not None:
        x, y, w, h = box
        pen.rectangle([x, y, x + w, y + h], outline=color, width=width)
    text = (", ".join(labels) if labels else "…") + (f"  ({sentiment})" if labels else "")
    if people and len(people) > 1:
        text = f"{len(people)} people · largest: " + text
    band = int(size * 1.6)
    pen.rectangle([0, image.height - band, image.width, image.height], fill=(0, 0, 0))
    pen.text((size // 2, image.height - band + size // 4), text, fill=color, font=font)
    if span is not None:
        when = f"window {span[0]:.1f}–{span[1]:.1f} s"
        pen.text((image.width - size // 2, image.height - band + size // 4), when, fill=(170, 170, 170), font=font,
                 anchor="ra")
    return image


def _font(ImageFont, size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


class FaceBoxes:
    """Face boxes on the live picture, found at most every `every_s` seconds of stream time (the detector costs
    ~15 ms): the largest face's, and for several people each person's, moved from where the record saw them (the
    window's last sampled frame, up to a window old) to the nearest face found on the picture now."""

    def __init__(self, every_s: float = 0.25):
        self.every_s = every_s
        self._last_t = -1e9
        self.box = None
        self.found: list[tuple[int, int, int, int]] = []
        try:
            from runtime.face import FaceDetector

            self.detector = FaceDetector()
        except ImportError:
            self.detector = None  # no OpenCV: pictures without a face box

    def update(self, t: float, rgb: np.ndarray):
        if self.detector is not None and t - self._last_t >= self.every_s:
            self._last_t = t
            self.found = self.detector.faces(rgb)
            self.box = self.found[0] if self.found else None
        return self.box

    def people(self, t: float, rgb: np.ndarray, people: list[dict], scale: float) -> list[dict]:
        """`people` (a record's list, boxes in frame pixels) with each box in picture pixels, moved to the face
        found now that lies nearest (each face to one person); a person with no face near keeps the record's box."""
        self.update(t, rgb)
        return follow(people, self.found, scale)


def follow(people: list[dict], found: list[tuple[int, int, int, int]], scale: float) -> list[dict]:
    """Greedy nearest-centre matching, nearest pairs first; a pair counts when the centres lie within one box
    size (the record's) of each other."""
    boxes = [tuple(v * scale for v in p["box"]) for p in people]
    centre = lambda b: (b[0] + b[2] / 2, b[1] + b[3] / 2)  # noqa: E731
    pairs = []
    for i, b in enumerate(boxes):
        (bx, by), reach = centre(b), max(b[2], b[3])
        for j, f in enumerate(found):
            fx, fy = centre(f)
            d = ((bx - fx) ** 2 + (by - fy) ** 2) ** 0.5
            if d <= reach:
                pairs.append((d, i, j))
    moved, taken = {}, set()
    for _, i, j in sorted(pairs):
        if i not in moved and j not in taken:
            moved[i] = found[j]
            taken.add(j)
    return [{**p, "box": tuple(moved.get(i, boxes[i]))} for i, p in enumerate(people)]
