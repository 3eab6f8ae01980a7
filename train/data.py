"""Training data: the MER-Caption(+) layout as released, or a JSONL manifest of our own.

MER-Caption: label CSVs with `name` + `openset` ("[happy, excited]") and/or `name` + `reason` (a
description), a subtitle CSV (`name`, `english`), and a media folder with `<name>.mp4` / `.avi`, optional
`<name>.wav` (used for audio when present) and optional face crops `<name>.npy` [T, H, W, 3] (OpenFace
crops, stored BGR as cv2 reads them; turned to RGB here, and the preprocessing's channel order then applies).
JSONL: one object per line with `path`, `subtitle`, `labels` (list) and/or `description`.

Media go through the runtime's decoding and preprocessing, so training sees exactly what the device sees.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.encode import encoder_inputs, vision_absent
from runtime.manifest import Preprocessing
from runtime.media import MediaError, read_audio, read_clip_for
from runtime.media_files import find_media
from runtime.preprocess import frame_indices
from runtime.prompt import DESCRIPTION_QUESTION, OV_QUESTION, ov_answer
from train.errors import TrainError


class DataError(TrainError):
    pass


@dataclass
class Sample:
    name: str
    media: Path | None
    subtitle: str = ""
    labels: list[str] | None = None
    description: str | None = None
    wav: Path | None = None
    faces: Path | None = None  # .npy face crops
    release: bool = False  # read from a MER-Caption(+) release layout (CSV), not a JSONL manifest
    face_emotion: str | None = None  # what the face shows, when the manifest says (the corpus does)
    silent: bool = False  # a person in view who says nothing: the face is all there is to go on (the corpus says)


def _parse_list(text: str) -> list[str]:
    text = (text or "").strip().strip("[]")
    return [w.strip().strip("'\"").lower() for w in text.split(",") if w.strip().strip("'\"")]


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataError(f"CSV not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def release_file(media_dir: Path, name: str, kind: str) -> Path | None:
    """A sample's pre-extracted audio ("wav") or OpenFace face crops ("npy"): the MER-Caption(+) release keeps
    them as audio/<name>.wav and openface_face/<name>/<name>.npy beside video/; <name>.wav / <name>.npy next
    to the media are read too."""
    roots = [media_dir, media_dir.parent]
    candidates = [media_dir / f"{name}.{kind}"]
    if kind == "wav":
        candidates += [root / "audio" / f"{name}.wav" for root in roots]
    else:
        candidates += [root / "openface_face" / name / f"{name}.npy" for root in roots]
    return next((p for p in candidates if p.is_file()), None)


def read_mercaption(media_dir: str | Path, label_csvs: list[str | Path], subtitle_csv: str | Path | None = None) -> list[Sample]:
    """Samples of a MER-Caption-style release: every name that has a label or a description."""
    media_dir = Path(media_dir)
    labels, reasons, subtitles = {}, {}, {}
    for path in map(Path, label_csvs):
        for row in _read_csv(path):
            if "openset" in row:
                labels[row["name"]] = _parse_list(row["openset"])
            if "reason" in row:
                reasons[row["name"]] = row["reason"]
    if subtitle_csv:
        for row in _read_csv(Path(subtitle_csv)):
            subtitles[row["name"]] = row.get("english") or row.get("subtitle") or row.get("sentence") or ""
    samples = []
    for name in sorted(set(labels) | set(reasons)):
        samples.append(Sample(name, find_media(media_dir, name), subtitles.get(name, ""), labels.get(name), reasons.get(name),
                              release_file(media_dir, name, "wav"), release_file(media_dir, name, "npy"), release=True))
    return samples


def layout_report(samples: list[Sample]) -> dict:
    """How many samples have their media, pre-extracted audio and face crops."""
    return {"samples": len(samples), "media": sum(s.media is not None for s in samples),
            "audio_wav": sum(s.wav is not None for s in samples), "face_crops": sum(s.faces is not None for s in samples)}


def check_face_crops(samples: list[Sample], prep: Preprocessing, log=None, openface: bool = True) -> dict:
    """A face-crop model that learnt its faces from OpenFace crops (`openface`: the released model) and reads data
    in the release's layout trains on those crops: refuse when none is found (the runtime's own face detector would
    silently stand in for them), report how many samples lack one. A model that learnt its faces from the runtime's
    detector (the embedded default) has its faces cropped by that detector, as in its own training."""
    report = layout_report(samples)
    release = [s for s in samples if s.release]
    if prep.face_crop and release and openface:
        if not any(s.faces is not None for s in release):
            raise DataError(f"none of {len(release)} samples has OpenFace face crops, which the face model trains on: "
                            "put the release's openface_face/ folder beside video/ (openface_face/<name>/<name>.npy), "
                            "or train the frame model (--preset affectgpt-7b-frame)")
        missing = sum(s.faces is None for s in release)
        if missing and log:
            log(f"{missing} of {len(release)} samples have no OpenFace face crops: their faces are cropped by the "
                "runtime's detector instead")
    return report


def read_jsonl(path: str | Path) -> list[Sample]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"manifest not found: {path}")
    samples = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            media = Path(row["path"])
        except (json.JSONDecodeError, KeyError) as err:
            raise DataError(f"{path}:{i + 1}: {err}") from None
        if not media.is_absolute():
            media = path.parent / media
        samples.append(Sample(row.get("name", media.stem), media, row.get("subtitle", ""), row.get("labels"),
                              row.get("description"), face_emotion=row.get("face_emotion"),
                              silent=bool(row.get("silent"))))
    return samples


def read_dataset(spec: str) -> list[Sample]:
    """A .jsonl manifest, or MEDIA_DIR:LABELS.csv[,LABELS2.csv][:SUBTITLES.csv] (MER-Caption layout)."""
    if spec.endswith(".jsonl"):
        return read_jsonl(spec)
    parts = spec.split(":")
    if len(parts) < 2:
        raise DataError(f"dataset {spec!r}: expected a .jsonl file or MEDIA_DIR:LABELS.csv[,MORE.csv][:SUBTITLES.csv]")
    return read_mercaption(parts[0], parts[1].split(","), parts[2] if len(parts) > 2 else None)


def target(sample: Sample, label_type: str, rng: random.Random) -> tuple[str, str]:
    """(question, answer) for a sample; hybrid draws one of the two available kinds."""
    kinds = []
    if label_type in ("ovlabel", "hybrid") and sample.labels is not None:
        kinds.append("ovlabel")
    if label_type in ("description", "hybrid") and sample.description:
        kinds.append("description")
    if not kinds:
        raise DataError(f"{sample.name} has no {label_type} target")
    kind = rng.choice(kinds)
    if kind == "ovlabel":
        return OV_QUESTION, ov_answer(sample.labels or [])
    return DESCRIPTION_QUESTION, sample.description.strip()


def load_media(sample: Sample, prep: Preprocessing) -> tuple[np.ndarray, np.ndarray, bool]:
    """→ (pixel values [T, 3, S, S], audio clips [K, samples], vision present) through the runtime's preprocessing.
    Vision is absent where the device would take it away: the bundle's no-face rule ("absent") and a detector that
    found a face in none of the frames (runtime.encode.unseen_face); the model then sees zero face features."""
    if sample.media is None:
        raise MediaError(f"{sample.name}: no media file")
    clip = read_clip_for(sample.media, prep)
    frames = clip.frames
    if sample.faces is not None:
        try:
            crops = np.load(sample.faces)
        except (OSError, ValueError) as err:
            raise MediaError(f"{sample.faces}: {err}") from None
        if crops.ndim != 4 or crops.shape[-1] != 3 or len(crops) == 0:
            raise MediaError(f"{sample.faces}: expected [T, H, W, 3] face crops, got {list(crops.shape)}")
        frames = crops[frame_indices(len(crops), prep.num_frames)][..., ::-1].astype(np.uint8)  # BGR → RGB
    waveform = clip.waveform
    if sample.wav is not None:
        waveform, _ = read_audio(sample.wav, prep.sample_rate)
    # the runtime's own encode path: faces cropped as the preprocessing says, unless crops came with the sample
    inputs = encoder_inputs(frames, waveform, prep, face_crop=False if sample.faces is not None else None)
    return inputs.pixels, inputs.clips, not vision_absent(inputs.faces, prep.no_face)


@dataclass
class SkipLog:
    """Samples skipped because their media are missing or broken: counted, never fatal."""

    count: int = 0
    names: list[str] = field(default_factory=list)

    def add(self, name: str) -> None:
        self.count += 1
        if len(self.names) < 20:
            self.names.append(name)
