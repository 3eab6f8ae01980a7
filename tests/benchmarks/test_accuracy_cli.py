"""`python -m benchmarks.accuracy` on a bundle and on answers made elsewhere."""

import json
import shutil

from benchmarks.accuracy import AnswerCache
from tests.conftest import WHEEL_DIR, run_cli


def _write(path, text):
    path.write_text(text)
    return path


def test_bundle_run_caches_answers_and_reruns_skip_them(wheel, bundle_f16, clip_path, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    for name in ("s1", "s2"):
        shutil.copy(clip_path, media / f"{name}.mp4")
    csv = _write(tmp_path / "ov.csv", "name,openset,english\ns1,\"[happy, excited]\",Great!\n"
                                      "s2,[sad],Leave me alone.\ns3,[angry],No media for this one.\n")
    args = ("benchmarks.accuracy", "--bundle", str(bundle_f16), "--dataset", f"OV={csv}:{media}",
            "--out", str(tmp_path / "r"), "--wheel-dir", str(WHEEL_DIR))
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "| OV | ov_f |" in first.stdout and "**mean**" in first.stdout
    answers = (tmp_path / "r" / "answers" / "OV.jsonl").read_text().splitlines()
    assert len(answers) == 3
    assert json.loads(answers[2]) == {"name": "s3", "answer": None, "error": "media not found"}
    scores = json.loads((tmp_path / "r" / "scores.json").read_text())
    assert scores["datasets"]["OV"]["metric"] == "ov_f"
    assert sum(scores["datasets"]["OV"]["label_sources"].values()) == 2  # the two answered samples

    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    assert len((tmp_path / "r" / "answers" / "OV.jsonl").read_text().splitlines()) == 3  # nothing re-answered
    assert "cached" in json.loads((tmp_path / "r" / "scores.json").read_text())["datasets"]["OV"]["answers"]


def test_scores_answers_made_elsewhere_and_keeps_the_best_checkpoint(wheel, tmp_path):
    csv = _write(tmp_path / "basic.csv", "name,label\ns1,happy\ns2,sad\ns3,neutral\n")
    good = _write(tmp_path / "epoch60.json", json.dumps({
        "s1": "The character's emotional state is happy.", "s2": "He looks down, his voice is low.",
        "s3": "The character's emotional state is calm."}))
    worse = _write(tmp_path / "epoch30.json", json.dumps({"s1": "The character's emotional state is angry."}))
    result = run_cli("benchmarks.accuracy", "--dataset", f"BASIC={csv}", "--answers", f"BASIC={worse}",
                     "--answers", f"BASIC={good}", "--out", str(tmp_path / "r"), "--wheel-dir", str(WHEEL_DIR))
    assert result.returncode == 0, result.stderr
    basic = json.loads((tmp_path / "r" / "scores.json").read_text())["datasets"]["BASIC"]
    assert basic["answers"].endswith("epoch60.json")
    assert basic["score"] == 0.5  # s1 hit, s2 not in the OV format → no labels → miss, s3 neutral → skipped
    assert basic["label_sources"] == {"ov-parser": 2, "none": 1}


def test_judge_reads_free_form_answers_into_wheel_words(wheel, bundle_f16, tmp_path):
    from benchmarks.judge import Judge

    judge = Judge(bundle_f16 / "llm-f16.gguf", wheel.wheel_words, n_ctx=512)
    labels = judge.labels("She smiles widely and her voice is bright and fast.")
    assert all(label in wheel.wheel_words for label in labels)
    csv = _write(tmp_path / "v.csv", "name,valence\ns1,1.5\n")
    answers = _write(tmp_path / "a.json", json.dumps({"s1": "She smiles widely."}))
    result = run_cli("benchmarks.accuracy", "--dataset", f"V={csv}", "--answers", f"V={answers}",
                     "--judge", str(bundle_f16 / "llm-f16.gguf"), "--out", str(tmp_path / "r"),
                     "--wheel-dir", str(WHEEL_DIR))
    assert result.returncode == 0, result.stderr
    v = json.loads((tmp_path / "r" / "scores.json").read_text())["datasets"]["V"]
    assert v["label_sources"] == {"judge": 1} and v["sentiment_source"].startswith("lexicon")


def test_a_line_cut_by_a_crash_is_answered_again(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"name": "s1", "answer": "x"}) + "\n" + '{"name": "s2", "ans')
    assert set(AnswerCache(path).done) == {"s1"}


def test_bad_arguments_are_one_line(tmp_path):
    result = run_cli("benchmarks.accuracy", "--dataset", f"X={tmp_path / 'none.csv'}", "--out", str(tmp_path / "r"),
                     "--wheel-dir", str(WHEEL_DIR))
    assert result.returncode == 1 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr
