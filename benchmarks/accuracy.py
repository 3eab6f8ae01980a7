"""MER-UniBench-style accuracy of a bundle, offline, with no 7B judge.

    python -m benchmarks.accuracy --bundle B --dataset MER2023=mer2023.csv:videos/ --dataset MOSI=mosi.csv:mosi/ --out R
    python -m benchmarks.accuracy --dataset OVMERD=ovlabel.csv --answers OVMERD=official/ovmerd-epoch60.npz --out R

A dataset CSV has a `name` column and one ground-truth column that decides its metric: `label` (single basic
emotion → hit rate), `valence` (number → sentiment weighted F1) or `openset` (label list → OV set-level F);
the subtitle comes from `english`, `subtitle` or `sentence` when present. Media are MEDIA_DIR/<name>.<ext>.

Answers are cached per sample in OUT/answers/<dataset>.jsonl as they are produced: a re-run skips what is
done, and Ctrl-C loses nothing. Each score records which path produced its labels (the OV-format parser,
the optional GGUF judge, or none) and that sentiment came from the wheel roots.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.emotion_wheel import EmotionWheel, string_to_list
from benchmarks.errors import BenchmarkError
from benchmarks.metrics import benchmark_mean, best_epoch, hit_rate, labels_to_sentiment, ov_scores, sentiment_f1
from benchmarks.report import write_report
from runtime.errors import run_cli
from runtime.media_files import find_media
from runtime.prompt import parse_ov_answer

SUBTITLE_COLUMNS = ("english", "subtitle", "sentence")
TASKS = {"label": "hit_rate", "valence": "sentiment_f1", "openset": "ov_f"}


@dataclass
class Dataset:
    name: str
    csv_path: Path
    media_dir: Path | None
    task: str  # "label" | "valence" | "openset"
    truth: dict  # name → label / valence / label list
    subtitles: dict[str, str]

    @classmethod
    def read(cls, spec: str) -> "Dataset":
        """NAME=CSV[:MEDIA_DIR]"""
        if "=" not in spec:
            raise BenchmarkError(f"--dataset {spec!r}: expected NAME=CSV[:MEDIA_DIR]")
        name, rest = spec.split("=", 1)
        csv_part, _, media = rest.partition(":")
        path = Path(csv_part)
        if not path.is_file():
            raise BenchmarkError(f"dataset {name}: CSV not found: {path}")
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if not rows or "name" not in rows[0]:
            raise BenchmarkError(f"dataset {name}: {path} needs a 'name' column")
        task = next((t for t in TASKS if t in rows[0]), None)
        if task is None:
            raise BenchmarkError(f"dataset {name}: {path} has none of the columns {', '.join(TASKS)}")
        parse = {"label": str.strip, "valence": float, "openset": string_to_list}[task]
        truth = {r["name"]: parse(r[task]) for r in rows}
        column = next((c for c in SUBTITLE_COLUMNS if c in rows[0]), None)
        subtitles = {r["name"]: (r[column] or "") for r in rows} if column else {}
        return cls(name, path, Path(media) if media else None, task, truth, subtitles)

    def media(self, name: str) -> Path | None:
        return find_media(self.media_dir, name)


class AnswerCache:
    """Append-only JSONL, one line per finished sample, flushed at once."""

    def __init__(self, path: Path):
        self.path = path
        self.done: dict[str, dict] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                    self.done[record["name"]] = record
                except (json.JSONDecodeError, KeyError):
                    continue  # a line cut by a crash: that sample runs again
        path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self.done[record["name"]] = record


def run_bundle(pipeline, dataset: Dataset, cache: AnswerCache, task, progress=None) -> Counter:
    """Answer every sample not yet cached; a sample whose media is missing or bad is recorded as such."""
    from runtime.errors import EdgeError

    status = Counter()
    for name in dataset.truth:
        if name in cache.done:
            status["cached"] += 1
            continue
        path = dataset.media(name)
        record = {"name": name, "answer": None, "error": None}
        if path is None:
            record["error"] = "media not found"
        else:
            try:
                record["answer"] = pipeline.answer_file(path, dataset.subtitles.get(name, ""), task).text
            except EdgeError as err:  # one bad sample never ends the run
                record["error"] = str(err)
        cache.add(record)
        status["error" if record["error"] else "answered"] += 1
        if progress:
            progress.update(1)
    return status


def read_answers(path: Path) -> dict[str, str]:
    """{name: answer} from a .json file, an official .npz (filenames / fileitems) or our .jsonl cache."""
    if not path.is_file():
        raise BenchmarkError(f"answers file not found: {path}")
    if path.suffix == ".npz":
        import numpy as np

        data = np.load(path, allow_pickle=True)
        if "filenames" in data:
            return {str(n): str(a) for n, a in zip(data["filenames"], data["fileitems"])}
        return {k: str(data[k]) for k in data.files}
    if path.suffix == ".jsonl":
        out = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("answer") is not None:
                out[record["name"]] = record["answer"]
        return out
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise BenchmarkError(f"{path}: expected a JSON object {{name: answer}}")
    return {str(k): str(v) for k, v in raw.items()}


def answers_to_labels(answers: dict[str, str], judge=None) -> tuple[dict[str, list[str]], Counter]:
    """Answers exactly in the OV format are parsed; every other answer goes to the judge (when given)."""
    labels, sources = {}, Counter()
    for name, answer in answers.items():
        parsed = parse_ov_answer(answer or "")
        if parsed is not None:
            labels[name], source = parsed, "ov-parser"
        elif judge is not None and answer:
            labels[name], source = judge.labels(answer), "judge"
        else:
            labels[name], source = [], "none"
        sources[source] += 1
    return labels, sources


def score(wheel: EmotionWheel, dataset: Dataset, labels: dict[str, list[str]]) -> dict:
    if dataset.task == "label":
        result = hit_rate(wheel, dataset.truth, labels)
    elif dataset.task == "valence":
        result = sentiment_f1(dataset.truth, {n: labels_to_sentiment(wheel, l) for n, l in labels.items()})
        result["sentiment_source"] = "lexicon (runtime/sentiment.py), wheel roots for unknown words"
    else:
        result = ov_scores(wheel, dataset.truth, labels)
    result["metric"] = TASKS[dataset.task]
    return result


def table(results: dict[str, dict]) -> str:
    primary = {name: r["score"] for name, r in results.items()}
    lines = ["| dataset | metric | score | samples | labels from | answers |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        n = r["n"] if isinstance(r["n"], int) else min(r["n"])
        sources = ", ".join(f"{k} {v}" for k, v in sorted(r["label_sources"].items()))
        lines.append(f"| {name} | {r['metric']} | {100 * r['score']:.2f} | {n} | {sources} | {r['answers']} |")
    lines.append(f"| **mean** | | **{benchmark_mean(primary):.2f}** | | | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", action="append", required=True, metavar="NAME=CSV[:MEDIA_DIR]")
    ap.add_argument("--bundle", metavar="DIR", help="run this bundle over each dataset's media")
    ap.add_argument("--answers", action="append", default=[], metavar="NAME=FILE",
                    help="score answers made elsewhere (.json {name: answer}, official .npz, .jsonl); "
                         "repeat for several checkpoints of one dataset: the best is kept")
    ap.add_argument("--out", required=True, metavar="DIR")
    ap.add_argument("--wheel-dir", help="emotion-wheel tables (default: the official ones shipped in the package)")
    ap.add_argument("--task", default="labels", help="the bundle's task (runtime/task.py; default labels)")
    ap.add_argument("--max-new-tokens", type=int, help="answer budget (default: the task's)")
    ap.add_argument("--unconstrained", action="store_true",
                    help="decode without the task's grammar, as the official evaluation does")
    ap.add_argument("--judge", metavar="GGUF", help="local GGUF model for answers that are not in the OV format")
    ap.add_argument("--threads", type=int)
    args = ap.parse_args(argv)
    out = Path(args.out)
    try:
        wheel = EmotionWheel(args.wheel_dir)
        datasets = {d.name: d for d in map(Dataset.read, args.dataset)}
        external: dict[str, list[Path]] = {}
        for spec in args.answers:
            name, _, path = spec.partition("=")
            if name not in datasets:
                raise BenchmarkError(f"--answers {spec!r}: no --dataset named {name}")
            external.setdefault(name, []).append(Path(path))
        missing = [n for n, d in datasets.items() if n not in external and (not args.bundle or d.media_dir is None)]
        if missing:
            raise BenchmarkError(f"datasets {', '.join(missing)} need --bundle and a MEDIA_DIR, or --answers")
        judge = None
        if args.judge:
            from benchmarks.judge import Judge

            judge = Judge(args.judge, wheel.wheel_words, n_threads=args.threads)
        pipeline = None
        if args.bundle and any(n not in external for n in datasets):
            from runtime.pipeline import Pipeline, RuntimeOptions

            from runtime.task import get_task

            pipeline = Pipeline(args.bundle, RuntimeOptions(threads=args.threads))
            task = get_task(args.task, args.max_new_tokens)
            task = task.unconstrained() if args.unconstrained else task

        results = {}
        for name, dataset in datasets.items():
            if name in external:
                candidates = {}
                for path in external[name]:
                    labels, sources = answers_to_labels(read_answers(path), judge)
                    r = score(wheel, dataset, labels)
                    r.update(label_sources=dict(sources), answers=str(path))
                    candidates[str(path)] = r
                chosen, _ = best_epoch({k: v["score"] for k, v in candidates.items()})
                results[name] = candidates[chosen]
                continue
            cache = AnswerCache(out / "answers" / f"{name}.jsonl")
            try:
                from tqdm import tqdm

                progress = tqdm(total=len(dataset.truth) - len(cache.done), desc=name, file=sys.stderr)
            except ImportError:
                progress = None
            status = run_bundle(pipeline, dataset, cache, task, progress)
            if progress:
                progress.close()
            answers = {n: r["answer"] for n, r in cache.done.items() if r.get("answer") is not None}
            labels, sources = answers_to_labels(answers, judge)
            r = score(wheel, dataset, labels)
            r.update(label_sources=dict(sources), answers=f"bundle ({dict(status)})")
            results[name] = r
    except KeyboardInterrupt:
        print("interrupted: answers so far are kept in " + str(out / "answers") + "; run again to go on", file=sys.stderr)
        return 130
    primary = {name: r["score"] for name, r in results.items()}
    print(write_report(out, "scores", {"datasets": results, "mean": benchmark_mean(primary)}, table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, expected=(ValueError, RuntimeError)))  # llama.cpp and the CSV readers raise these
