"""The official emotion-wheel normalisation of AffectGPT / MER-UniBench, reproduced exactly.

Reads the official tables (wheel1..5.xlsx, synonym.xlsx, format.csv). They ship inside the package, unchanged,
in `benchmarks/data/emotion-wheel/` with their Apache-2.0 LICENSE; they come from the AffectGPT release
(github.com/zeroQiaoba/AffectGPT, `emotion_wheel/`). `--wheel-dir` points at another copy.

- each wheel maps every word at level 1, 2 or 3 to its level-1 root (blank cells inherit from above);
- `raw_mapping`: 1255 words → the wheel words they are synonyms of, merged over the eight synonym runs;
- `format_mapping`: 7386 surface forms → their base words (format.csv, each base maps to itself).

A word is mapped for wheel k by collecting every wheel word reachable through both tables, sorting them
alphabetically and taking the first one that wheel k knows. Its artefacts are kept on purpose (for example
`fear` → `happy` in wheel 2, through `fearless` → `courageous`): matching the official numbers needs them.
"""

from __future__ import annotations

import csv
import os
import re
from functools import cached_property
from pathlib import Path

from benchmarks.errors import BenchmarkError

WHEELS = ("wheel1", "wheel2", "wheel3", "wheel4", "wheel5")
SYNONYM_RUNS = 8
DEFAULT_WHEEL_DIR = Path(__file__).resolve().parent / "data" / "emotion-wheel"


class WheelDataError(BenchmarkError):
    pass


def string_to_list(text) -> list[str]:
    """The official list parser: strip outer brackets, split on quotes and commas, strip, lower-case."""
    if text is None:
        return []
    text = str(text).strip()
    if text.startswith("["):
        text = text[1:]
    if text.endswith("]"):
        text = text[:-1]
    return [item.strip().lower() for item in re.split(r"[,'\"]", text) if item.strip()]


def _rows(xlsx: Path) -> list[dict]:
    try:
        import openpyxl
    except ImportError:
        raise WheelDataError("reading the wheel tables needs openpyxl: pip install 'affectgpt-edge[bench]'") from None
    if not xlsx.is_file():
        raise WheelDataError(f"missing wheel table {xlsx}")
    sheet = openpyxl.load_workbook(xlsx, read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    header = [str(h).strip() for h in rows[0]]
    return [dict(zip(header, row)) for row in rows[1:] if any(cell is not None for cell in row)]


def read_wheel(xlsx: Path) -> dict[str, dict[str, list[str]]]:
    """level1 → level2 → [level3], lower-cased and stripped; blank cells inherit the value above."""
    tree: dict[str, dict[str, list[str]]] = {}
    level1 = level2 = level3 = ""
    for row in _rows(xlsx):
        level1 = str(row["level1"]).strip().lower() if row["level1"] is not None else level1
        level2 = str(row["level2"]).strip().lower() if row["level2"] is not None else level2
        level3 = str(row["level3"]).strip().lower() if row["level3"] is not None else level3
        tree.setdefault(level1, {}).setdefault(level2, []).append(level3)
    return tree


class EmotionWheel:
    """The official tables of one folder, loaded lazily."""

    def __init__(self, wheel_dir: str | os.PathLike | None = None):
        self.dir = Path(wheel_dir) if wheel_dir else DEFAULT_WHEEL_DIR
        if not self.dir.is_dir():
            raise WheelDataError(f"emotion-wheel folder not found: {self.dir} (pass --wheel-dir)")

    @cached_property
    def wheels(self) -> dict[str, dict[str, dict[str, list[str]]]]:
        return {name: read_wheel(self.dir / f"{name}.xlsx") for name in WHEELS}

    @cached_property
    def wheel_words(self) -> set[str]:
        """Every word on any wheel at any level (253)."""
        words = set()
        for tree in self.wheels.values():
            for level1, level2s in tree.items():
                words.add(level1)
                for level2, level3s in level2s.items():
                    words.add(level2)
                    words.update(level3s)
        return words

    def roots(self, wheel: str) -> dict[str, str]:
        """Every word of `wheel` → its level-1 root."""
        out = {}
        for level1, level2s in self.wheels[wheel].items():
            out[level1] = level1
            for level2, level3s in level2s.items():
                out[level2] = level1
                for level3 in level3s:
                    out[level3] = level1
        return out

    @cached_property
    def _roots(self) -> dict[str, dict[str, str]]:
        return {wheel: self.roots(wheel) for wheel in WHEELS}

    @cached_property
    def raw_mapping(self) -> dict[str, set[str]]:
        """word → wheel words it stands for, merged over the synonym runs (1255 words)."""
        mapping: dict[str, set[str]] = {}
        rows = _rows(self.dir / "synonym.xlsx")
        for run in range(1, SYNONYM_RUNS + 1):
            for row in rows:
                raw = str(row[f"word_run{run}"]).strip().lower()
                if raw not in self.wheel_words:
                    raise WheelDataError(f"synonym.xlsx run {run}: {raw!r} is not a wheel word")
                mapping.setdefault(raw, set()).add(raw)
                for synonym in string_to_list(row[f"synonym_run{run}"]):
                    mapping.setdefault(synonym, set()).add(raw)
        return mapping

    @cached_property
    def format_mapping(self) -> dict[str, set[str]]:
        """surface form → base words (7386 forms)."""
        path = self.dir / "format.csv"
        if not path.is_file():
            raise WheelDataError(f"missing {path}")
        mapping: dict[str, set[str]] = {}
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                base = row["name"]
                for form in string_to_list(row["format"]):
                    mapping.setdefault(form, set()).add(base)
                mapping.setdefault(base, set()).add(base)
        return mapping

    def map_word(self, word: str, wheel: str) -> str | None:
        """A word → its level-1 root on `wheel`, or None when it maps to nothing (then it is dropped)."""
        word = word.strip().lower()
        bases = self.format_mapping.get(word)
        if not bases:
            return None
        candidates = sorted(w for base in bases for w in self.raw_mapping.get(base, ()))
        roots = self._roots[wheel]
        for candidate in candidates:
            if candidate in roots:
                return roots[candidate]
        return None

    def map_labels(self, labels, wheel: str) -> set[str]:
        """A label list → the set of level-1 roots on `wheel`; unmapped words are dropped."""
        return {root for root in (self.map_word(w, wheel) for w in labels) if root is not None}
