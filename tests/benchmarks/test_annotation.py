"""The engine's agreement with a known truth, stage by stage; the full 300-clip measurement is slow."""

import json
from pathlib import Path

import pytest

from tests.conftest import WHEEL_DIR, run_cli


def _record(name, labels, sentiment, votes, failed=()):
    filters = [{"filter": f, "passed": f not in failed, "reason": ""} for f in ("face", "speech", "sync", "length", "consensus")]
    return {"name": name, "labels": labels, "sentiment": sentiment, "votes": votes, "filters": filters,
            "clues": {"visual": {"face": [True, False]}}, "llm": "m.gguf", "seconds": 1.0}


def test_agreement_rises_where_the_filters_drop_wrong_clips():
    from benchmarks.annotation import score, table
    from benchmarks.emotion_wheel import EmotionWheel

    truth = {"a": {"labels": ["happy"], "sentiment": 1}, "b": {"labels": ["sad"], "sentiment": -1},
             "c": {"labels": ["angry"], "sentiment": -1}, "d": {"labels": [], "sentiment": 0}}
    records = {"a": _record("a", ["happy"], "positive", {"face": "positive", "text": None}),
               "b": _record("b", ["happy"], "positive", {"face": "negative", "text": "negative"}, failed=("consensus",)),
               "c": _record("c", ["angry"], "negative", {"face": "negative", "text": "negative"}, failed=("speech",)),
               "d": _record("d", [], "neutral", {"face": "neutral", "text": "positive"})}
    report = score(records, truth, EmotionWheel(WHEEL_DIR))
    stages = {r["stage"]: r for r in report["stages"]}
    assert stages["all annotated (MER-Caption)"]["sentiment_acc"] == 75.0
    assert stages["+ consensus"]["clips"] == 2 and stages["+ consensus"]["sentiment_acc"] == 100.0
    assert stages["+ consensus"]["ov_f"] == pytest.approx(100.0)
    assert report["voters"]["face"] == {"votes": 4, "abstains_%": 0.0, "sentiment_acc": 100.0}
    assert report["voters"]["text"]["votes"] == 3
    assert "| + speech | 3 |" in table(report)


@pytest.mark.slow
def test_the_engine_on_300_unseen_synthetic_clips(tmp_path):
    """python -m pytest -m slow tests/benchmarks/test_annotation.py  (40 min to 2 h on two shared cores); the table is
    left in $AFFECTGPT_RESULTS/annotation (default: a temporary folder)"""
    import os

    out = Path(os.environ.get("AFFECTGPT_RESULTS", tmp_path)) / "annotation"
    assert run_cli("benchmarks.annotation", "render", "--out", str(out / "corpus"), "--plan", "3200", "--seed", "11",
                   timeout=3600).returncode == 0
    done = run_cli("train.annotate", "--videos", str(out / "corpus" / "videos"), "--out", str(out / "dataset"),
                   "--subtitles", str(out / "corpus" / "subtitles.csv"), "--no-progress", timeout=6 * 3600)
    assert done.returncode == 0, done.stderr
    result = run_cli("benchmarks.annotation", "score", "--dataset", str(out / "dataset"), "--truth",
                     str(out / "corpus" / "truth.jsonl"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "annotation.json").read_text())["clips"] >= 300
