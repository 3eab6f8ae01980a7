"""`python -m runtime.stream` as a user runs it: JSON lines on stdout, one-line errors, no tracebacks."""

import json

from tests.conftest import run_cli


def test_whole_clips_print_a_json_line_each(bundle_f16, clip_path):
    result = run_cli("runtime.stream", "--clip", str(clip_path), "--clip", str(clip_path),
                     "--bundle", str(bundle_f16), "--subtitle", "Fine. Whatever you say.", "--max-new-tokens", "8")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    record = json.loads(lines[0])
    assert isinstance(record["labels"], list) and isinstance(record["text"], str)
    assert set(record["timings_ms"]) >= {"decode", "vision", "audio", "fusion", "llm_prefill", "llm_decode", "total"}
    assert 0 < len(record["token_ids"]) <= 8


def test_clip_mode_takes_the_task(bundle_f16, clip_path):
    """--clip answers the task it is given: labels in the grammar's format, describe as free text."""
    labels = run_cli("runtime.stream", "--clip", str(clip_path), "--bundle", str(bundle_f16), "--max-new-tokens", "24")
    assert labels.returncode == 0, labels.stderr
    text = json.loads(labels.stdout)["text"]
    assert text.startswith("The character's emotional state is "), text  # the grammar holds even for random weights
    describe = run_cli("runtime.stream", "--clip", str(clip_path), "--bundle", str(bundle_f16), "--task", "describe",
                       "--max-new-tokens", "6")
    assert describe.returncode == 0, describe.stderr
    record = json.loads(describe.stdout)
    assert len(record["token_ids"]) == 6 and not record["text"].startswith("The character's emotional state is ")


def _assert_one_line_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [x for x in result.stderr.strip().splitlines() if x]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


def test_missing_video(bundle_f16, tmp_path):
    result = run_cli("runtime.stream", "--clip", str(tmp_path / "missing.mp4"), "--bundle", str(bundle_f16))
    _assert_one_line_error(result)
    assert "not found" in result.stderr


def test_corrupt_video_does_not_stop_the_next(bundle_f16, clip_path, tmp_path):
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(clip_path.read_bytes()[:2000])  # a truncated download
    result = run_cli("runtime.stream", "--clip", str(bad), "--clip", str(clip_path), "--bundle", str(bundle_f16),
                     "--max-new-tokens", "4")
    _assert_one_line_error(result)
    assert len(result.stdout.strip().splitlines()) == 1  # the good file still answered


def test_missing_bundle(tmp_path, clip_path):
    _assert_one_line_error(run_cli("runtime.stream", "--clip", str(clip_path), "--bundle", str(tmp_path / "none")))
