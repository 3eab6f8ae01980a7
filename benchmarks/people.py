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

Agreement: each group photo as a 4 s clip through the stream with --max-people 8, and each person's own crop (the
face box grown 1.5 widths each side, the rest of the photo not in view) through the single-person stream; and the
demo's sample clips answered in batches of 4 against one at a time (the batch's rounding alone).
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


def group_agreement(pipeline, width: int = 960) -> list[dict]:
    """Per photo: the people the stream tracks in the group clip, and per person whether their group answer is the
    answer their own crop gets alone."""
    from train.synth import write_media

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in FACES:
            rgb = photo(name, width)
            silence = np.zeros(16000 * 4, np.float32)
            clip = write_media(Path(tmp) / f"{name}.mp4", [rgb] * 20, silence, fps=5)
            group = stream_people(pipeline, clip, 8)
            people = []
            for p in group:
                x, y, w, h = p["box"]
                H, W = rgb.shape[:2]
                x0, y0 = max(0, int(x - 1.5 * w)), max(0, int(y - 1.5 * w))
                x1, y1 = min(W, int(x + 2.5 * w)), min(H, int(y + 2.5 * w))
                alone = np.ascontiguousarray(rgb[y0:y1 - (y1 - y0) % 2, x0:x1 - (x1 - x0) % 2])
                solo = write_media(Path(tmp) / f"{name}-{p['id']}.mp4", [alone] * 20, silence, fps=5)
                single = stream_people(pipeline, solo, 1)
                labels = single[0]["labels"] if single else []
                people.append({"id": p["id"], "group": p["labels"], "alone": labels, "same": p["labels"] == labels})
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
                lines += ["| photo | by eye | tracks | same answer in the group as alone |", "|---|---|---|---|"]
                for r in data["groups"]:
                    same = sum(p["same"] for p in r["people"])
                    detail = "; ".join(f"#{p['id']} {','.join(p['group'])} / {','.join(p['alone'])}" for p in r["people"])
                    lines.append(f"| {r['photo']}{' (held out)' if r['held_out'] else ''} | {r['by_eye']} | "
                                 f"{r['tracks']} | {same}/{len(r['people'])} ({detail}) |")
        finally:
            pipeline.close()
    print(write_report(args.out, "people", data, "\n".join(lines)))


if __name__ == "__main__":
    sys.exit(run_cli(main))
