"""One clip → one record: clues, the merged description, its OV labels, the votes and every filter's decision."""

from __future__ import annotations

import csv
import time
from pathlib import Path

from runtime.sentiment import sentiment
from train.annotate import filters
from train.annotate.chat import ChatModel
from train.annotate.clues import AcousticReader, AnnotateError, FaceReader, clues_dict, read_media
from train.annotate.merge import Merger


def read_subtitles(path: str | Path) -> dict[str, str]:
    """A subtitle CSV as the release's subtitle_chieng.csv: `name` and `english` (or `subtitle` / `sentence`)."""
    path = Path(path)
    if not path.is_file():
        raise AnnotateError(f"--subtitles {path}: no such file")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if rows and "name" not in rows[0]:
        raise AnnotateError(f"--subtitles {path}: needs a `name` column and an `english` one")
    return {r["name"]: r.get("english") or r.get("subtitle") or r.get("sentence") or "" for r in rows}


class BundleVoter:
    """The current bundle's own answer (the labels task) → sentiment."""

    def __init__(self, bundle: str | Path | None, threads: int):
        from runtime.api import open_bundle

        self.pipeline = open_bundle(bundle, threads=threads)

    def __call__(self, path: Path, words: str) -> tuple[str, list[str]]:
        from runtime.api import fitted_subtitle
        from runtime.task import TASKS

        task = TASKS["labels"]
        answer = self.pipeline.answer_file(path, fitted_subtitle(self.pipeline, words, task), task)
        return sentiment(answer.labels), answer.labels

    def close(self) -> None:
        self.pipeline.close()


class Annotator:
    def __init__(self, llm: str | Path | None = None, face_bundle: str | Path | None = None,
                 bundle: str | Path | None = None, vote_bundle: bool = True, threads: int = 1,
                 min_face: float = filters.MIN_FACE_FRACTION):
        from runtime.api import default_bundle

        self.face = FaceReader(face_bundle or default_bundle(), threads)
        self.acoustic = AcousticReader(threads)
        self.chat = ChatModel(llm, threads=threads)
        self.merger = Merger(self.chat)
        self.voter = BundleVoter(bundle, threads) if vote_bundle else None
        self.min_face = min_face

    def annotate(self, path: Path, subtitle: str | None = None) -> dict:
        t0 = time.perf_counter()
        frames, times, waveform, media = read_media(path)
        clues = clues_dict(self.face.read(frames, times), self.acoustic.read(waveform, subtitle), media)
        description, ended = self.merger.describe(clues)
        labels = self.merger.labels(description)
        described = sentiment(labels)
        words = clues["acoustic"]["words"]
        votes = {"face": filters.face_vote(clues), "text": filters.text_vote(words),
                 "prosody": filters.prosody_vote(clues["acoustic"]["prosody"])}
        bundle_labels = None
        if self.voter is not None:
            votes["bundle"], bundle_labels = self.voter(path, words)
        low = filters.low_level(clues, description, ended, self.min_face)
        high = filters.high_level(votes, described)
        low_ok = all(d["passed"] for d in low)
        return {"name": path.stem, "source": str(path), "clues": clues, "description": description,
                "description_ended": ended, "labels": labels, "sentiment": described, "votes": votes,
                "bundle_labels": bundle_labels, "filters": low + [high], "low_level_kept": low_ok,
                "kept": low_ok and high["passed"],
                "dropped_by": [d["filter"] for d in low + [high] if not d["passed"]],
                "llm": self.chat.path.name, "seconds": round(time.perf_counter() - t0, 2)}

    def close(self) -> None:
        self.chat.close()
        if self.voter is not None:
            self.voter.close()
