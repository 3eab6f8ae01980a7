"""The annotated dataset on disk, in the MER-Caption(+) layout the trainer reads (train/data.py):

    DATASET/video/<name>.mp4                      the clips (hard links where the file system allows, else copies)
    DATASET/clips/<name>.json                     everything about one clip: clues, description, labels, votes,
                                                  every filter's decision and reason (written atomically: the unit
                                                  of resumption)
    DATASET/review/<name>.json                    a reviewer's decision on it (accept / edit / reject)
    DATASET/subtitle_chieng.csv                   name, english
    DATASET/track2_train_mercaption.csv           name, openset — every annotated clip
    DATASET/track3_train_mercaption.csv           name, reason
    DATASET/track2_train_mercaptionplus.csv       the same for clips both filters kept
    DATASET/track3_train_mercaptionplus.csv
    DATASET/track2_train_reviewed.csv             the reviewed set: accepted or edited clips, with the edits,
    DATASET/track3_train_reviewed.csv             less the held-out tenth:
    DATASET/track2_heldout_reviewed.csv           reviewed clips whose name hashes to the held-out tenth, never
    DATASET/track3_heldout_reviewed.csv           trained on: the new bundle is compared with the old one there

Train on the filtered set with `--data DATASET/video:DATASET/track2_train_mercaptionplus.csv,
DATASET/track3_train_mercaptionplus.csv:DATASET/subtitle_chieng.csv`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

from runtime.atomic import write_text
from train.annotate.clues import AnnotateError

HELD_OUT = (0, 10)  # the shard of names kept out of fine-tuning: a tenth, the same on every machine


def _reviewed(r, d) -> bool:
    return d is not None and d["decision"] in ("accept", "edit")


SETS = {"train_mercaption": lambda r, d: "error" not in r,
        "train_mercaptionplus": lambda r, d: r["kept"],
        "train_reviewed": lambda r, d: _reviewed(r, d) and not in_shard(r["name"], HELD_OUT),
        "heldout_reviewed": lambda r, d: _reviewed(r, d) and in_shard(r["name"], HELD_OUT)}


def parse_shard(spec: str | None) -> tuple[int, int]:
    """"i/n" (0 ≤ i < n) → (i, n); None → (0, 1)."""
    if not spec:
        return 0, 1
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise AnnotateError(f"--shard takes i/n (e.g. 0/4), not {spec!r}") from None
    if not 0 <= i < n:
        raise AnnotateError(f"--shard {spec}: i must be at least 0 and below n")
    return i, n


def in_shard(name: str, shard: tuple[int, int]) -> bool:
    """A clip's shard from its name alone: every machine agrees without talking, and adding clips moves none."""
    i, n = shard
    return int(hashlib.sha256(name.encode()).hexdigest()[:12], 16) % n == i


def record_path(dataset: Path, name: str) -> Path:
    return dataset / "clips" / f"{name}.json"


def review_path(dataset: Path, name: str) -> Path:
    return dataset / "review" / f"{name}.json"


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def place_media(source: Path, dataset: Path, name: str) -> Path:
    target = dataset / "video" / f"{name}{source.suffix.lower()}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        os.link(source, partial)
    except OSError:
        shutil.copyfile(source, partial)
    os.replace(partial, target)
    return target


def records(dataset: Path) -> dict[str, dict]:
    out = {}
    for path in sorted((dataset / "clips").glob("*.json")):
        out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
    return out


def decisions(dataset: Path) -> dict[str, dict]:
    folder = dataset / "review"
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def csv_text(rows, header) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_tables(dataset: Path) -> dict[str, int]:
    """The CSVs from every finished clip and review decision (each written atomically). → clips per set."""
    recs, decided = records(dataset), decisions(dataset)
    write_text(dataset / "subtitle_chieng.csv", csv_text(((n, r["clues"]["acoustic"]["words"]) for n, r in recs.items()
                                                      if "clues" in r),
                                                     ("name", "english")))
    counts = {}
    for name_of_set, keep in SETS.items():
        chosen = [(n, r, decided.get(n)) for n, r in recs.items() if keep(r, decided.get(n))]

        def final(r, d, key):
            return d[key] if d is not None and d["decision"] == "edit" and key in d else r[key]
        write_text(dataset / f"track2_{name_of_set}.csv",
                   csv_text(((n, "[" + ", ".join(final(r, d, "labels")) + "]") for n, r, d in chosen), ("name", "openset")))
        write_text(dataset / f"track3_{name_of_set}.csv",
                   csv_text(((n, final(r, d, "description")) for n, r, d in chosen), ("name", "reason")))
        counts[name_of_set] = len(chosen)
    return counts


def train_spec(dataset: Path, which: str = "train_mercaptionplus") -> str:
    """The trainer's --data for one set of the dataset."""
    d = Path(dataset)
    return f"{d / 'video'}:{d / f'track2_{which}.csv'},{d / f'track3_{which}.csv'}:{d / 'subtitle_chieng.csv'}"
