"""Everyone in view: every face of the face-api group photos found (BlazeFace, boxes on the Haar geometry), tracked
with stable ids, answered per person in one LLM batch, and carried in the records."""

import json

import numpy as np
import pytest

from benchmarks.people import FACES, photo, score
from tests.conftest import ROOT, run_cli

PHOTOS = ROOT / "benchmarks" / "data" / "photos"

DEMO = ROOT / "runtime" / "demo" / "bundle"


@pytest.fixture(scope="module")
def blaze():
    pytest.importorskip("cv2", reason="face crops need the face extra")
    from runtime.face_detector import BlazeFace

    return BlazeFace()


def group_clip(path, name="sample3.jpg", width=640, seconds=4):
    from train.synth import write_media

    return write_media(path, [photo(name, width)] * (5 * seconds), np.zeros(16000 * seconds, np.float32), fps=5)


@pytest.mark.parametrize("name", sorted(FACES))
def test_every_face_of_the_group_photos_is_found(blaze, name):
    found, false = score(blaze.faces(photo(name)), FACES[name])
    assert (found, false) == (len(FACES[name]), 0)


def test_boxes_keep_the_haar_geometry(blaze):
    from runtime.face import HaarCascade

    rgb = photo("sample3.jpg")
    haar, ours = HaarCascade().faces(rgb), blaze.faces(rgb)
    for hx, hy, hw, hh in haar:
        x, y, w, h = min(ours, key=lambda b: abs(b[0] + b[2] / 2 - hx - hw / 2) + abs(b[1] + b[3] / 2 - hy - hh / 2))
        assert abs(x + w / 2 - hx - hw / 2) < 0.15 * hw and abs(y + h / 2 - hy - hh / 2) < 0.15 * hw
        assert 0.8 < w / hw < 1.25 and w == h


def iou(a, b) -> float:
    w = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


@pytest.mark.parametrize("name", ["sample1.jpg", "sample3.jpg"])
def test_a_face_gets_the_same_box_in_the_group_as_cropped_alone(blaze, name):
    """The crop the answer sees must not depend on who else is in view: each face is re-detected in a view of its own
    (before, the tile that first found it set its box: IoU 0.76-0.95 between group and alone on these photos)."""
    from benchmarks.people import alone_view

    rgb = photo(name, 960)
    group = blaze.faces(rgb)
    for box in group:
        alone, (x0, y0) = alone_view(rgb, box, [b for b in group if b != box], 0.25)
        ax, ay, aw, ah = blaze.faces(alone)[0]
        assert iou(box, (ax + x0, ay + y0, aw, ah)) > 0.93


def test_tracks_keep_their_ids_while_faces_move_and_come_back(blaze):
    pytest.importorskip("supervision", reason="tracking needs the people extra")
    from runtime.tracks import Tracks

    rgb = photo("sample3.jpg", 960)
    tracks = Tracks(blaze, fps=2.0)
    first = tracks.update(0, rgb)
    assert len(first) == 3 and len({f.id for f in first}) == 3
    shifted = np.roll(rgb, 12, axis=1)
    hidden = rgb.copy()
    x, y, w, h = first[0].box
    hidden[y:y + h, x:x + w] = 0  # the largest face is covered for a frame
    tracks.update(500, shifted)
    middle = tracks.update(1000, hidden)
    assert first[0].id not in {f.id for f in middle} and len(middle) == 2
    back = tracks.update(1500, rgb)
    by_place = lambda faces: {round((f.box[0] + f.box[2] / 2) / 100): f.id for f in faces}  # noqa: E731
    assert by_place(back) == by_place(first)
    assert tracks.update(1000, rgb) == middle  # a frame is tracked once


def test_parallel_sequences_share_the_prompt_start_and_answer_as_one_would(bundle_f16):
    from runtime.answer import answer, answer_many
    from runtime.api import open_bundle
    from runtime.task import TASKS

    pipeline = open_bundle(bundle_f16)
    try:
        llm, multi = pipeline.llm, pipeline.llm.fork(3)
        rng = np.random.default_rng(0)
        fused = [rng.standard_normal((3, llm.n_embd)).astype(np.float32) for _ in range(3)]
        task = TASKS["labels"].with_budget(6)
        alone = [answer(llm, pipeline.manifest.prompt, f, "", task) for f in fused]
        together = answer_many(multi, pipeline.manifest.prompt, fused, "", task)
        assert len(together) == 3
        # a batch rounds differently from one sequence: the first token's logits agree closely, not bit for bit
        prefix = [1, 2, 3, 4]
        multi.share_prefix(prefix, 3)
        assert [multi.n_past(s) for s in range(3)] == [4, 4, 4]
        rows = multi.eval_batch([(s, [5, 6]) for s in range(3)])
        assert np.abs(rows[0] - rows[1]).max() < 1e-3 and np.abs(rows[1] - rows[2]).max() < 1e-3
        single = llm.eval_chunks([prefix + [5, 6]], 0, 1) if llm.reset() is None else None
        assert np.abs(single[0] - rows[0]).max() < 0.05 * (np.abs(single[0]).max() + 1)
        assert sum(a.labels == b.labels for a, b in zip(alone, together)) >= 2
    finally:
        pipeline.close()  # closes the fork first


def _records(out: str) -> list[dict]:
    return [r for r in map(json.loads, out.splitlines()) if "window" in r]


def test_the_stream_answers_everyone_of_a_group_photo(tmp_path):
    pytest.importorskip("supervision", reason="tracking needs the people extra")
    clip = group_clip(tmp_path / "group.mp4")
    proc = run_cli("runtime.stream", "--video", str(clip), "--max-windows", "1", "--json", "--max-new-tokens", "12")
    assert proc.returncode == 0, proc.stderr
    (record,) = _records(proc.stdout)
    people = record["people"]
    assert len(people) == 3 and len({p["id"] for p in people}) == 3
    assert [p["primary"] for p in people] == [True, False, False]
    areas = [p["box"][2] * p["box"][3] for p in people]
    assert areas == sorted(areas, reverse=True)
    assert record["labels"] == people[0]["labels"] and record["text"] == people[0]["text"]
    assert all(p["speaking"] is None and p["frames"] == 8 and p["labels"] for p in people)  # no VAD: cannot tell


def test_a_group_frame_is_detected_once_and_its_boxes_lie_inside_it(tmp_path, monkeypatch):
    pytest.importorskip("supervision", reason="tracking needs the people extra")
    from runtime.api import Stream
    from runtime.face_detector import BlazeFace

    calls = []
    detect = BlazeFace.detect
    monkeypatch.setattr(BlazeFace, "detect", lambda self, rgb: calls.append(rgb.shape) or detect(self, rgb))
    clip = group_clip(tmp_path / "group.mp4", name="sample5.jpg", seconds=6)
    records = [w.to_record() for w in Stream(str(clip), max_people=3, max_new_tokens=4)]
    assert len(records) >= 2 and len(records[0]["people"]) == 3
    # the answer's crop and the tracker share one detection per sampled frame: 8 black warm-up frames, 8 for the first
    # window, 4 new ones for each next (windows of 4 s every 2 s); a second detector per frame would double the rest
    assert len(calls) <= 8 + 8 + 4 * (len(records) - 1)
    height = photo("sample5.jpg", 640).shape[0]
    for r in records:
        for person in r["people"]:
            x, y, w, h = person["box"]
            assert x >= 0 and y >= 0 and x + w <= 640 and y + h <= height


def test_max_people_one_is_the_largest_face_alone(tmp_path):
    clip = group_clip(tmp_path / "group.mp4")
    proc = run_cli("runtime.stream", "--video", str(clip), "--max-windows", "1", "--json", "--max-new-tokens", "12",
                   "--max-people", "1")
    assert proc.returncode == 0, proc.stderr
    (record,) = _records(proc.stdout)
    assert len(record["people"]) <= 1
    if record["people"]:
        assert record["people"][0]["primary"] and record["people"][0]["labels"] == record["labels"]


def test_max_people_below_one_is_refused_in_one_line(tmp_path):
    clip = group_clip(tmp_path / "group.mp4", seconds=1)
    proc = run_cli("runtime.stream", "--video", str(clip), "--max-people", "0")
    assert proc.returncode != 0 and "--max-people" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_without_the_tracker_several_people_fall_back_to_the_largest_face(bundle_f16, monkeypatch, capsys):
    import runtime.tracks as tracks
    from runtime.api import Stream, open_bundle

    def missing(*args, **kwargs):
        raise tracks.TrackerMissing("tracking several people needs supervision < 0.31: pip install 'affectgpt-edge[people]'")

    monkeypatch.setattr(tracks, "Tracks", missing)
    pipeline = open_bundle(bundle_f16)
    try:
        stream = Stream(str(ROOT / "runtime" / "demo" / "samples" / "happy.mp4"), pipeline=pipeline, max_people=3,
                        face_crop=True)
        assert stream.engine.max_people == 1 and stream.engine.multi_llm is None
        assert "affectgpt-edge[people]" in capsys.readouterr().err
        quiet = Stream(str(ROOT / "runtime" / "demo" / "samples" / "happy.mp4"), pipeline=pipeline, face_crop=True)
        assert quiet.engine.max_people == 1 and capsys.readouterr().err == ""  # the default asks nothing: no warning
    finally:
        pipeline.close()


def test_the_dashboard_shows_everyone_with_their_labels(tmp_path):
    """A group photo served live: the page lists each person, the picture draws their boxes, /metrics counts them.
    With AFFECTGPT_SCREENSHOT set, the page is saved beside it as people-<name>."""
    import os
    import shutil
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    from tests.runtime.test_dashboard import _port

    pytest.importorskip("supervision", reason="tracking needs the people extra")
    pytest.importorskip("flask", reason="--serve needs the serve extra")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    clip = group_clip(tmp_path / "group.mp4", "sample5.jpg", width=800)
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "runtime.stream", "--video", str(clip), "--loop", "--realtime",
                             "--serve", f"127.0.0.1:{port}", "--max-new-tokens", "12", "--max-people", "5"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "AFFECTGPT_DASHBOARD_TOKEN": ""})
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 620})
            for _ in range(120):
                try:
                    page.goto(url + "/")
                    break
                except sync_api.Error:
                    if proc.poll() is not None:
                        pytest.fail(proc.stderr.read().decode())
                    page.wait_for_timeout(500)
            page.wait_for_function("document.querySelectorAll('#people div').length >= 5", timeout=180_000)
            rows = page.locator("#people div").all_inner_texts()
            assert len(rows) == 5 and all(r.startswith("#") for r in rows) and "(largest)" in rows[0]
            page.wait_for_timeout(1500)  # the next picture carries the boxes of the answer just shown
            shot = os.environ.get("AFFECTGPT_SCREENSHOT")
            if shot:
                page.screenshot(path=str(Path(shot).with_name("people-" + Path(shot).name)))
            browser.close()
        metrics = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
        assert "affectgpt_people 5.0" in metrics
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_people_are_drawn_with_their_boxes_and_labels():
    pytest.importorskip("PIL", reason="drawing needs the serve extra")
    from runtime.overlay import draw

    rgb = np.full((200, 400, 3), 90, np.uint8)
    people = [{"id": 4, "box": [20, 60, 80, 80], "labels": ["happy"], "sentiment": "positive", "primary": True},
              {"id": 7, "box": [250, 60, 60, 60], "labels": ["sad"], "sentiment": "negative", "primary": False}]
    image = np.asarray(draw(rgb, None, ["happy"], "positive", (0.0, 4.0), people, scale=1.0))
    assert tuple(image[100, 20]) == (46, 204, 113) and tuple(image[90, 250]) == (231, 76, 60)  # box edges, tinted
    assert (image[40:58, 20:80] == 0).any()  # the tag's dark plate above the first box


def test_the_live_picture_moves_each_persons_box_to_where_their_face_is_now():
    """The record's boxes come from the window's last sampled frame; on the picture shown later each box follows
    its own face (a real group photo, moved 40 px to the right and 20 px down), and keeps its id and labels."""
    pytest.importorskip("cv2", reason="face detection needs OpenCV")
    from PIL import Image

    from runtime.face import FaceDetector
    from runtime.overlay import FaceBoxes, follow

    photo = np.asarray(Image.open(PHOTOS / "sample1.jpg").convert("RGB"))
    seen = FaceDetector().faces(photo)
    assert len(seen) >= 2
    people = [{"id": 10 + i, "box": list(b), "labels": [f"label{i}"]} for i, b in enumerate(seen)]
    now = np.zeros_like(photo)
    now[20:, 40:] = photo[:-20, :-40]
    shown = FaceBoxes().people(0.0, now, people, 1.0)
    assert [p["id"] for p in shown] == [p["id"] for p in people]
    for before, after in zip(people, shown):
        x, y, w, h = before["box"]
        ax, ay, aw, ah = after["box"]
        assert abs(ax - (x + 40)) <= max(4, w // 8) and abs(ay - (y + 20)) <= max(4, h // 8), (before, after)
        assert after["labels"] == before["labels"]
    # a person whose face is gone keeps the record's box (scaled to the picture); a face is given to one person
    alone = follow([{"id": 1, "box": [0, 0, 10, 10]}, {"id": 2, "box": [2, 0, 10, 10]}], [(5, 1, 20, 20)], 2.0)
    assert alone[1]["box"] == (5, 1, 20, 20) and alone[0]["box"] == (0, 0, 20, 20)


def test_every_face_counted_by_eye_has_a_judgement_and_is_found_by_its_box():
    from benchmarks.people import BY_EYE, face_index

    assert {n: len(f) for n, f in BY_EYE.items()} == {n: len(c) for n, c in FACES.items()}
    assert all(right and right <= {"positive", "neutral", "negative"} for faces in BY_EYE.values() for _, right in faces)
    x, y = FACES["sample3.jpg"][1]  # the middle face, in a copy half as wide
    assert face_index("sample3.jpg", (x // 2 - 20, y // 2 - 20, 40, 40), 960) == 1
    assert face_index("sample3.jpg", (0, 0, 10, 10), 960) is None


def test_a_face_alone_is_the_only_face_in_view(blaze):
    from benchmarks.people import alone_view

    rgb = photo("sample3.jpg", 960)
    group = blaze.faces(rgb)
    for k, box in enumerate(group):
        alone, (x0, y0) = alone_view(rgb, box, group[:k] + group[k + 1:], 0.25)
        centres = [(x - x0 + w / 2, y - y0 + h / 2) for x, y, w, h in group]
        assert score(blaze.faces(alone), centres) == (1, 0)
