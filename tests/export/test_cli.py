"""`python -m export` as a user runs it."""

import json

from tests.conftest import run_cli


def test_export_from_a_checkpoint_then_answer(tiny_checkpoint, clip_path, tmp_path):
    out = tmp_path / "mine"
    result = run_cli("export", "--checkpoint", str(tiny_checkpoint), "--out", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["weights"] == "trained"
    assert summary["bytes"]["llm"] > 0 and summary["parity"]["llm-f16.gguf.top1_agreement"] == 1.0
    answer = run_cli("runtime.stream", "--clip", str(clip_path), "--bundle", str(out), "--max-new-tokens", "4")
    assert answer.returncode == 0, answer.stderr
    assert "labels" in json.loads(answer.stdout)


def test_export_from_a_broken_checkpoint_is_one_line(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    result = run_cli("export", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "b"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: ") and "missing" in result.stderr


def test_a_preset_needs_random_weights_said_out_loud(tmp_path):
    refused = run_cli("export", "--preset", "affectgpt-7b", "--out", str(tmp_path / "b"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "--random-weights" in refused.stderr
    assert not (tmp_path / "b").exists()
    result = run_cli("export", "--preset", "tiny", "--random-weights", "--out", str(tmp_path / "t"))
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "t" / "manifest.json").read_text())["weights"] == "random"
