"""The real-language probe: everyday sentences the corpus never held (benchmarks/data/probe/sentences.jsonl), each
with its sentiment and basic emotion, read by a bundle the way the stream reads a window.

    python -m benchmarks.probe --out results/probe                    # the embedded default
    python -m benchmarks.probe --bundle B --out results/probe --conditions subtitle
    python -m benchmarks.probe --set danger --out results/probe       # the 20 fear / urgency / danger sentences

Sets (benchmarks/data/probe/), each scored on its own: everyday (136 sentences, sentences.jsonl) and danger (20
sentences of fear, urgency and danger in a car, danger.jsonl); `--set all` runs both, one report each.

Conditions:
  subtitle       the sentence over a neutral clip (a grey frame, silence): what the words alone make the model say
  matching       the sentence with a face and voice of its emotion, drawn and spoken by the corpus's renderer
                 (an identity no corpus holds); neutral sentences get a neutral face and voice
  contradicting  a face and voice of the opposite sentiment (positive sentences: sad; negative: happy); neutral
                 sentences are left out. Reported as agreement with the words and with the face and voice.

Sentiment is the stream's own (runtime/sentiment.py on the answer's labels); the basic-emotion hit rate is
MER-UniBench's (through the five emotion wheels; neutral sentences do not count there, as in MER-UniBench).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.emotion_wheel import EmotionWheel
from benchmarks.errors import BenchmarkError
from benchmarks.metrics import hit_rate
from benchmarks.report import write_report
from runtime.errors import run_cli
from runtime.media import Clip, read_clip_for
from runtime.pipeline import Pipeline, RuntimeOptions
from runtime.sentiment import sentiment
from runtime.task import get_task

SENTENCES = Path(__file__).resolve().parent / "data" / "probe" / "sentences.jsonl"
SETS = {"everyday": SENTENCES, "danger": SENTENCES.with_name("danger.jsonl")}
CONDITIONS = ("subtitle", "matching", "contradicting")
OPPOSITE = {"positive": "sad", "negative": "happy"}
PROBE_IDENTITY = 2_000_000  # far from any corpus's identities and from the encoders' pretraining ones


def read_sentences(path: str | Path = SENTENCES) -> list[dict]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    for row in rows:
        if (row.get("sentiment") not in ("positive", "negative", "neutral") or not row.get("text")
                or not row.get("id") or not isinstance(row.get("emotion"), str)):
            raise BenchmarkError(f"{path}: row {row.get('id')} lacks an id, a text, a sentiment "
                                 "(positive / negative / neutral) or an emotion")
    return rows


def neutral_clip(prep, seconds: float = 4.0) -> Clip:
    """A grey picture and silence: what the model sees and hears carries no emotion."""
    frames = np.full((prep.num_frames, 120, 160, 3), 128, np.uint8)
    return Clip(frames=frames, waveform=np.zeros(int(seconds * prep.sample_rate), np.float32), duration_s=seconds,
                num_video_frames=prep.num_frames, has_audio=True)


def rendered_clip(text: str, emotion: str, index: int, folder: Path, prep) -> Clip:
    """The corpus renderer's face and voice showing `emotion`, speaking `text`."""
    from train.corpus import make_identity, render_clip

    rng = np.random.default_rng(PROBE_IDENTITY + index)
    ident = make_identity(PROBE_IDENTITY + index, rng)
    row = {"name": f"probe_{index:04d}_{emotion}", "face_emotion": emotion, "voice_emotion": emotion, "subtitle": text}
    return read_clip_for(render_clip(folder, row, ident, PROBE_IDENTITY + index), prep)


def run(bundle: str | Path | None, sentences: list[dict], conditions=CONDITIONS, threads: int | None = None,
        progress: bool = True, task_name: str = "labels") -> dict:
    from tqdm import tqdm

    from runtime.api import default_bundle

    bundle = bundle or default_bundle()
    if bundle is None:
        raise BenchmarkError("no bundle given and no default bundle installed")
    task = get_task(task_name)
    pipeline = Pipeline(bundle, RuntimeOptions(threads=threads))
    prep = pipeline.manifest.preprocessing
    answers: dict[str, dict[str, list[str]]] = {c: {} for c in conditions}
    try:
        neutral = pipeline.features(neutral_clip(prep)).fused
        with tempfile.TemporaryDirectory() as tmp:
            for i, row in enumerate(tqdm(sentences, desc="sentences", disable=not progress, file=sys.stderr)):
                for condition in conditions:
                    if condition == "subtitle":
                        fused = neutral
                    elif condition == "matching":
                        emotion = row["emotion"] if row["sentiment"] != "neutral" else "neutral"
                        fused = pipeline.features(rendered_clip(row["text"], emotion, i, Path(tmp), prep)).fused
                    elif row["sentiment"] in OPPOSITE:
                        fused = pipeline.features(rendered_clip(row["text"], OPPOSITE[row["sentiment"]], i, Path(tmp),
                                                                prep)).fused
                    else:
                        continue
                    answers[condition][row["id"]] = pipeline.answer(fused, row["text"], task).labels
    finally:
        pipeline.close()
    return score(sentences, answers, str(bundle))


def score(sentences: list[dict], answers: dict[str, dict[str, list[str]]], bundle: str = "") -> dict:
    wheel = EmotionWheel()
    by_id = {r["id"]: r for r in sentences}
    result = {"bundle": bundle, "sentences": len(sentences), "conditions": {}}
    for condition, got in answers.items():
        if not got:
            continue
        said = {i: sentiment(labels) for i, labels in got.items()}
        right = [said[i] == by_id[i]["sentiment"] for i in got]
        per_class = {}
        for cls in ("positive", "negative", "neutral"):
            ids = [i for i in got if by_id[i]["sentiment"] == cls]
            if ids:
                per_class[cls] = {"n": len(ids), "accuracy": 100 * float(np.mean([said[i] == cls for i in ids]))}
        hits = hit_rate(wheel, {i: by_id[i]["emotion"] for i in got if by_id[i]["emotion"] != "neutral"}, got)
        entry = {"n": len(got), "sentiment_accuracy": 100 * float(np.mean(right)), "per_sentiment": per_class,
                 "emotion_hit_rate": 100 * hits["score"],
                 "answers": {i: {"labels": got[i], "sentiment": said[i]} for i in got}}
        if condition == "contradicting":
            face_side = {"positive": "negative", "negative": "positive"}
            entry["follows_face_and_voice"] = 100 * float(np.mean([said[i] == face_side[by_id[i]["sentiment"]] for i in got]))
        result["conditions"][condition] = entry
    return result


def table(result: dict) -> str:
    lines = [f"| probe ({result['sentences']} sentences) | n | sentiment accuracy | positive | negative | neutral "
             "| basic-emotion hit rate | follows face and voice |", "|---|---|---|---|---|---|---|---|"]
    for condition, e in result["conditions"].items():
        per = e["per_sentiment"]
        cell = lambda k: f"{per[k]['accuracy']:.1f}" if k in per else "–"  # noqa: E731
        follows = f"{e['follows_face_and_voice']:.1f}" if "follows_face_and_voice" in e else "–"
        lines.append(f"| {condition} | {e['n']} | {e['sentiment_accuracy']:.1f} | {cell('positive')} | "
                     f"{cell('negative')} | {cell('neutral')} | {e['emotion_hit_rate']:.1f} | {follows} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.probe", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--bundle", help="bundle folder (default: the embedded default)")
    ap.add_argument("--set", default="everyday", choices=[*SETS, "all"], help="which probe set (default: everyday)")
    ap.add_argument("--sentences", help="a sentences file instead of --set")
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help=f"comma-separated: {', '.join(CONDITIONS)}")
    ap.add_argument("--limit", type=int, help="first N sentences only")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = sorted(set(conditions) - set(CONDITIONS))
    if unknown:
        raise BenchmarkError(f"unknown condition {', '.join(unknown)}: choose from {', '.join(CONDITIONS)}")
    sets = {"probe": args.sentences} if args.sentences else \
        {("probe" if name == "everyday" else f"probe-{name}"): path for name, path in SETS.items()
         if args.set in (name, "all")}
    for report, path in sets.items():
        result = run(args.bundle, read_sentences(path)[: args.limit], conditions, args.threads)
        print(write_report(args.out, report, result, table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, expected=(OSError, ValueError)))  # an unreadable or malformed sentences file
