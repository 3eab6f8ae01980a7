"""The embedded default: found by default, small in the repository, answering on its own held-out sample clips and
reading everyday sentences it never saw."""

import json

import pytest

from tests.conftest import ROOT, WHEEL_DIR, run_cli

DEMO = ROOT / "runtime" / "demo"


def _samples():
    path = DEMO / "samples" / "samples.jsonl"
    if not path.is_file():
        pytest.skip("no shipped demo in runtime/demo (make it with python -m benchmarks.recipe --ship runtime/demo)")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_demo_bundle_is_small_and_complete():
    _samples()
    from runtime.manifest import read_manifest

    manifest = read_manifest(DEMO / "bundle")
    assert manifest.name == "affectgpt-edge-default"
    assert manifest.base_model and manifest.base_model["key"] == "gemma-3-270m-q4_k_m"
    assert "Gemma Terms of Use" in (DEMO / "bundle" / "NOTICE.md").read_text()  # the base's terms travel with it
    total = sum(f.stat().st_size for f in (DEMO / "bundle").iterdir())
    assert total <= 60e6, f"{total / 1e6:.1f} MB"  # the repository's share; the base comes from its package


def test_stream_runs_the_demo_with_no_bundle_argument():
    sample = _samples()[0]
    result = run_cli("runtime.stream", "--video", str(DEMO / "samples" / sample["file"]), "--subtitle", sample["subtitle"])
    assert result.returncode == 0, result.stderr
    windows = [json.loads(x) for x in result.stdout.splitlines() if '"window"' in x]
    assert windows and all(w["labels"] for w in windows)


def test_demo_recognises_most_of_its_samples():
    samples = _samples()
    args = ["runtime.stream", "--max-new-tokens", "24"]
    hits = 0
    for s in samples:
        result = run_cli(*args, "--clip", str(DEMO / "samples" / s["file"]), "--subtitle", s["subtitle"])
        assert result.returncode == 0, result.stderr
        labels = json.loads(result.stdout)["labels"]
        hits += bool(set(labels) & set(s["labels"])) or (not s["labels"] and labels == ["neutral"])
    assert hits >= len(samples) // 2, f"{hits} of {len(samples)}"


def test_default_reads_everyday_sentences_it_never_saw(tmp_path):
    """The first 30 probe sentences (benchmarks/data/probe, never trained on) over a neutral clip, through the
    probe's command: the default's sentiment must be right for most (the whole probe is in the README)."""
    _samples()
    result = run_cli("benchmarks.probe", "--conditions", "subtitle", "--limit", "30", "--out", str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stderr
    scores = json.loads((tmp_path / "probe.json").read_text())["conditions"]["subtitle"]
    assert scores["n"] == 30 and scores["sentiment_accuracy"] >= 70, scores["sentiment_accuracy"]


def test_corpus_labels_are_emotion_wheel_words():
    from benchmarks.emotion_wheel import EmotionWheel
    from train.corpus import EMOTIONS

    wheel = EmotionWheel(WHEEL_DIR)
    for emotion, (labels, *_rest) in EMOTIONS.items():
        for word in labels + ([emotion] if emotion != "neutral" else []):
            assert wheel.map_word(word, "wheel1") or wheel.map_word(word, "wheel2"), word
