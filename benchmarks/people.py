"""Everyone in view: the face detector's recall on the face-api group photos, the cost of a window for 1 / 2 / 4 people,
and whether a person is answered the same in a group as alone.

    python -m benchmarks.people --out results/people            # all three tables (a few minutes on two cores)
    python -m benchmarks.people --only recall                    # the detector table alone (seconds)
    python -m benchmarks.people --only cost --bundle B --precision int8-dynamic --llm-variant q8_0   # another bundle

Recall: faces counted by eye (their centres, FACES below) against the Haar cascade's boxes and BlazeFace's, one
detection per face (a box holding a face's centre); a box holding none is a false detection. sample5 is held out of
the detector's tuning (the score floor and the Haar-geometry fit were set on sample1 and sample3).

Cost: one window of the bundle (the embedded default unless --bundle) per people count: the vision encoder over everyone's 8 crops in one call,
the fusion per person, and the LLM answers in one batch (runtime/answer.answer_many); against one person's window.
Wall time (median of --repeat) and this process's CPU time (a shared machine slows the wall clock, not the work).

Agreement: each group photo as a 4 s clip through the stream with --max-people 8, and each person's own view (the
face box grown 1.5 widths each side, the other faces painted out) through the single-person stream; a person's alone
answer is right when its sentiment is one BY_EYE allows; and the demo's sample clips answered in batches of 4 against
one at a time (the batch's rounding alone).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import cpu_name, write_report
from runtime.errors import run_cli

PHOTOS = Path(__file__).parent / "data" / "photos"
HELD_OUT = "sample5.jpg"
# By eye: each face's centre in full-size pixels.
FACES = {
    "sample1.jpg": [(530, 480), (930, 550), (1570, 320)],
    "sample3.jpg": [(690, 470), (1190, 360), (1600, 400)],
    "sample5.jpg": [(470, 1030), (690, 580), (864, 220), (1190, 330), (1500, 540)],
}


# By eye, each face of FACES in the same order: what it shows, and the sentiments an answer may have to be right
# (a faint, closed-lip smile may be read either way; nobody in these photos looks negative).
BY_EYE = {
    "sample1.jpg": [("made-up face, lips closed, faint smile", {"neutral", "positive"}),
                    ("eyes cast down, faint smile", {"neutral", "positive"}),
                    ("laughing, mouth open", {"positive"})],
    "sample3.jpg": [("pout, no smile", {"neutral"}), ("smiling", {"positive"}), ("broad smile", {"positive"})],
    "sample5.jpg": [("smiling, mouth open", {"positive"}), ("lips parted, playful smile", {"neutral", "positive"}),
                    ("faint smile", {"neutral", "positive"}), ("faint smile", {"neutral", "positive"}),
                    ("faint closed-lip smile", {"neutral", "positive"})],
}


def face_index(name: str, box, width: int) -> int | None:
    """Which face of FACES[name] a box (x, y, w, h, in a copy `width` pixels wide) holds, or None."""
    f = width / photo(name).shape[1] if width else 1.0
    x, y, w, h = box
    return next((i for i, (cx, cy) in enumerate(FACES[name]) if x <= cx * f <= x + w and y <= cy * f <= y + h), None)


def photo(name: str, width: int | None = None) -> np.ndarray:
    from PIL import Image

    im = Image.open(PHOTOS / name).convert("RGB")
    if width:
        im = im.resize((width, round(im.height * width / im.width / 2) * 2))
    return np.asarray(im)


def score(boxes, centres) -> tuple[int, int]:
    """→ (faces found, false detections): a box is a hit for the first unmatched centre inside it."""
    left, false = list(centres), 0
    for x, y, w, h in boxes:
        hit = next((c for c in left if x <= c[0] <= x + w and y <= c[1] <= y + h), None)
        if hit is None:
            false += 1
        else:
            left.remove(hit)
    return len(centres) - len(left), false


def recall() -> list[dict]:
    from runtime.face import HaarCascade
    from runtime.face_detector import BlazeFace

    haar, blaze = HaarCascade(), BlazeFace()
    rows = []
    for name, centres in FACES.items():
        rgb = photo(name)
        t = time.perf_counter()
        found = blaze.faces(rgb)
        ms = (time.perf_counter() - t) * 1e3
        (h_hit, h_false), (b_hit, b_false) = score(haar.faces(rgb), centres), score(found, centres)
        rows.append({"photo": name, "held_out": name == HELD_OUT, "by_eye": len(centres), "haar_found": h_hit,
                     "haar_false": h_false, "blazeface_found": b_hit, "blazeface_false": b_false,
                     "blazeface_ms": round(ms, 1)})
    return rows


def cost(pipeline, repeat: int, counts=(1, 2, 4)) -> list[dict]:
    from runtime.answer import answer, answer_many
    from runtime.media import read_clip_for
    from runtime.preprocess import pixel_values
    from runtime.task import TASKS

    prep, task = pipeline.manifest.preprocessing, TASKS["labels"]
    clips = sorted((Path(__file__).parents[1] / "runtime" / "demo" / "samples").glob("*.mp4"))
    features = [pipeline.features(read_clip_for(c, prep)) for c in clips[:max(counts)]]
    crops = np.stack([np.zeros((prep.image_size, prep.image_size, 3), np.uint8)] * prep.num_frames)
    multi = pipeline.llm.fork(max(counts))
    rows = []
    try:
        answer_many(multi, pipeline.manifest.prompt, [f.fused for f in features[:2]], "", task)  # warm, checked
        for n in counts:
            walls, cpus, llm_walls = [], [], []
            for _ in range(repeat):
                w0, c0 = time.perf_counter(), time.process_time()
                pixels = pixel_values(list(crops) * n, prep)
                vision = pipeline.encoders.encode_frames(pixels).reshape(n, prep.num_frames, -1)
                for i in range(n):  # the fusion's cost; the answers below take the real clips' rows
                    pipeline.encoders.fuse(vision[i], features[i].audio)
                fused = [f.fused for f in features[:n]]
                l0 = time.perf_counter()
                if n == 1:
                    answer(pipeline.llm, pipeline.manifest.prompt, fused[0], "", task)
                else:
                    answer_many(multi, pipeline.manifest.prompt, fused, "", task)
                llm_walls.append(time.perf_counter() - l0)
                walls.append(time.perf_counter() - w0)
                cpus.append(time.process_time() - c0)
            rows.append({"people": n, "window_ms": round(statistics.median(walls) * 1e3, 1),
                         "llm_ms": round(statistics.median(llm_walls) * 1e3, 1),
                         "cpu_ms": round(statistics.median(cpus) * 1e3, 1)})
        for row in rows:
            row["vs_one_wall"] = round(row["window_ms"] / rows[0]["window_ms"], 2)
            row["vs_one_cpu"] = round(row["cpu_ms"] / rows[0]["cpu_ms"], 2)
        return rows
    finally:
        multi.close()


def batch_agreement(pipeline) -> dict:
    """The demo's sample clips answered four at a time in one batch against one at a time."""
    from runtime.answer import answer, answer_many
    from runtime.media import read_clip_for
    from runtime.task import TASKS

    prep, task = pipeline.manifest.preprocessing, TASKS["labels"]
    clips = sorted((Path(__file__).parents[1] / "runtime" / "demo" / "samples").glob("*.mp4"))
    fused = [pipeline.features(read_clip_for(c, prep)).fused for c in clips]
    single = [answer(pipeline.llm, pipeline.manifest.prompt, f, "", task).labels for f in fused]
    multi = pipeline.llm.fork(4)
    try:
        batched = []
        for i in range(0, len(fused), 4):
            batched += [a.labels for a in answer_many(multi, pipeline.manifest.prompt, fused[i:i + 4], "", task)]
    finally:
        multi.close()
    same = sum(a == b for a, b in zip(single, batched))
    return {"clips": len(fused), "same": same, "differ": [(c.name, s, b) for c, s, b in zip(clips, single, batched)
                                                         if s != b]}


def stream_people(pipeline, clip: Path, max_people: int) -> list[dict]:
    from runtime.api import Stream

    for record in Stream(str(clip), pipeline=pipeline, max_people=max_people, max_windows=1):
        if record.error is None:
            return record.people or ([{"labels": record.labels, "box": None}] if record.labels else [])
    return []


def alone_view(rgb: np.ndarray, box, others, margin: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The face's box grown 1.5 widths per side, with every other face's box painted grey except where it enters
    this face's own crop (box grown by `margin`), which keeps the pixels the group's crop sees: the face is the only
    one in view. → (the view, even-sized, and its top-left corner in the photo)."""
    x, y, w, h = box
    H, W = rgb.shape[:2]
    side = int(max(w, h) * (1 + 2 * margin))
    cx, cy = x + w // 2, y + h // 2
    keep = np.zeros(rgb.shape[:2], bool)
    keep[max(0, cy - side // 2):max(0, cy - side // 2) + side, max(0, cx - side // 2):max(0, cx - side // 2) + side] = True
    paint = np.zeros(rgb.shape[:2], bool)
    for ox, oy, ow, oh in others:  # the face and its hair: the box grown a quarter per side
        paint[max(0, int(oy - oh / 4)):int(oy + oh * 1.25), max(0, int(ox - ow / 4)):int(ox + ow * 1.25)] = True
    out = rgb.copy()
    out[paint & ~keep] = 128
    x0, y0 = max(0, int(x - 1.5 * w)), max(0, int(y - 1.5 * w))
    x1, y1 = min(W, int(x + 2.5 * w)), min(H, int(y + 2.5 * w))
    return np.ascontiguousarray(out[y0:y1 - (y1 - y0) % 2, x0:x1 - (x1 - x0) % 2]), (x0, y0)


def group_agreement(pipeline, width: int = 960) -> list[dict]:
    """Per photo: the people the stream tracks in the group clip, and per person whether their group answer is the
    answer their own crop gets alone (the other faces painted out)."""
    from runtime.sentiment import sentiment
    from train.synth import write_media

    margin = pipeline.manifest.preprocessing.face_margin
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in FACES:
            rgb = photo(name, width)
            silence = np.zeros(16000 * 4, np.float32)
            clip = write_media(Path(tmp) / f"{name}.mp4", [rgb] * 20, silence, fps=5)
            group = stream_people(pipeline, clip, 8)
            people = []
            for p in group:
                alone, _ = alone_view(rgb, p["box"], [q["box"] for q in group if q is not p], margin)
                solo = write_media(Path(tmp) / f"{name}-{p['id']}.mp4", [alone] * 20, silence, fps=5)
                single = stream_people(pipeline, solo, 1)
                labels = single[0]["labels"] if single else []
                face = face_index(name, p["box"], width)
                shows, right = BY_EYE[name][face] if face is not None else ("not a face counted by eye", set())
                people.append({"id": p["id"], "face": face, "by_eye": shows, "group": p["labels"], "alone": labels,
                               "right_alone": sentiment(labels) in right, "same": p["labels"] == labels,
                               "same_sentiment": sentiment(p["labels"]) == sentiment(labels)})
            rows.append({"photo": name, "held_out": name == HELD_OUT, "by_eye": len(FACES[name]),
                         "tracks": len(group), "people": people})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default=None, help="default: the embedded default")
    ap.add_argument("--out", default="results/people")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", choices=("recall", "cost", "agreement"), default=None)
    ap.add_argument("--precision", default=None, help="encoder variant (default: the bundle's)")
    ap.add_argument("--llm-variant", default=None, help="GGUF variant, e.g. q8_0 (default: the bundle's)")
    args = ap.parse_args(argv)
    data: dict = {"cpu": cpu_name(), "bundle": args.bundle or "the embedded default", "precision": args.precision,
                  "llm_variant": args.llm_variant}
    lines = [f"CPU: {data['cpu']}; bundle {data['bundle']}"
             + "".join(f", {k} {data[k]}" for k in ("precision", "llm_variant") if data[k]), ""]
    if args.only in (None, "recall"):
        data["recall"] = recall()
        lines += ["| photo | by eye | Haar found (false) | BlazeFace found (false) | BlazeFace ms |", "|---|---|---|---|---|"]
        lines += [f"| {r['photo']}{' (held out)' if r['held_out'] else ''} | {r['by_eye']} | {r['haar_found']} "
                  f"({r['haar_false']}) | {r['blazeface_found']} ({r['blazeface_false']}) | {r['blazeface_ms']} |"
                  for r in data["recall"]]
        lines.append("")
    if args.only != "recall":
        from runtime.api import open_bundle

        chosen = {k: v for k, v in (("encoder_variant", args.precision), ("llm_variant", args.llm_variant)) if v}
        pipeline = open_bundle(args.bundle, **chosen)
        try:
            if args.only in (None, "cost"):
                data["cost"] = cost(pipeline, args.repeat)
                lines += ["| people | window ms (median) | LLM ms | CPU ms | × one (wall) | × one (CPU) |",
                          "|---|---|---|---|---|---|"]
                lines += [f"| {r['people']} | {r['window_ms']} | {r['llm_ms']} | {r['cpu_ms']} | {r['vs_one_wall']} | "
                          f"{r['vs_one_cpu']} |" for r in data["cost"]]
                lines.append("")
            if args.only in (None, "agreement"):
                data["batch"] = batch_agreement(pipeline)
                b = data["batch"]
                lines += [f"Batch of 4 vs one at a time, demo sample clips: {b['same']}/{b['clips']} the same labels"
                          + "".join(f"; {n}: {s} alone, {m} batched" for n, s, m in b["differ"]), ""]
                data["groups"] = group_agreement(pipeline)
                lines += ["| photo | face (by eye) | alone | right alone | in the group | same labels | same sentiment |",
                          "|---|---|---|---|---|---|---|"]
                for r in data["groups"]:
                    for p in sorted(r["people"], key=lambda p: (p["face"] is None, p["face"])):
                        lines.append(f"| {r['photo']}{' (held out)' if r['held_out'] else ''} | {p['by_eye']} | "
                                     f"{', '.join(p['alone'])} | {'yes' if p['right_alone'] else 'no'} | "
                                     f"{', '.join(p['group'])} | {'yes' if p['same'] else 'no'} | "
                                     f"{'yes' if p['same_sentiment'] else 'no'} |")
                right = [p for r in data["groups"] for p in r["people"] if p["right_alone"]]
                data["right_alone"] = {"people": len(right), "same": sum(p["same"] for p in right),
                                       "same_sentiment": sum(p["same_sentiment"] for p in right)}
                lines += ["", f"Of {len(right)} people answered right alone (by eye): {data['right_alone']['same']} "
                              f"the same labels in the group, {data['right_alone']['same_sentiment']} the same sentiment"]
        finally:
            pipeline.close()
    print(write_report(args.out, "people", data, "\n".join(lines)))


if __name__ == "__main__":
    sys.exit(run_cli(main))
