"""An LLM written to GGUF tensor by tensor (the 7B path: the model is never in memory), checked at tiny size against
the in-memory writer: the same tensors from a local folder with a checkpoint's LoRA merged as each is read, and a
random-weight bundle the runtime answers with."""

from __future__ import annotations

import gguf
import numpy as np
import pytest


def _tensors(path) -> dict[str, np.ndarray]:
    return {t.name: np.array(t.data) for t in gguf.GGUFReader(str(path)).tensors}


def test_a_folder_with_a_checkpoints_lora_streams_to_the_same_gguf_as_the_merged_model(tiny_model, tmp_path):
    from safetensors.torch import load_file

    from export.bundle import merged_llm
    from export.gguf_llm import write_gguf, write_gguf_tensors
    from export.lazy_llm import checkpoint_lora, folder_tensors
    from train.checkpoint import WEIGHTS_FILE, save_checkpoint

    save_checkpoint(tiny_model, tmp_path / "ckpt")
    from transformers import Qwen2ForCausalLM

    config = tiny_model.llm.get_base_model().config
    base = Qwen2ForCausalLM(config)  # the base alone, as a released folder holds it
    base.load_state_dict({k.replace(".base_layer", ""): v for k, v in tiny_model.llm.get_base_model().state_dict().items()
                          if "lora_" not in k})
    base.save_pretrained(tmp_path / "qwen")
    lora = checkpoint_lora(load_file(str(tmp_path / "ckpt" / WEIGHTS_FILE)), tiny_model.cfg.lora_alpha)
    assert len(lora) == 2 * 7  # two layers, seven projections each
    written = []
    write_gguf_tensors(base.config, folder_tensors(tmp_path / "qwen", base.config, lora), tiny_model.tokenizer,
                       tmp_path / "streamed.gguf", "f32", tiny_model.bos_id, tiny_model.eos_id, progress=written.append)
    write_gguf(merged_llm(tiny_model), tiny_model.tokenizer, tmp_path / "memory.gguf", "f32", tiny_model.bos_id,
               tiny_model.eos_id)
    streamed, memory = _tensors(tmp_path / "streamed.gguf"), _tensors(tmp_path / "memory.gguf")
    assert streamed.keys() == memory.keys() and sum(written) == sum(a.nbytes for a in memory.values())
    for name, value in memory.items():
        np.testing.assert_allclose(streamed[name], value, rtol=0, atol=1e-6, err_msg=name)
    changed = [n for n in memory if "attn_q.weight" in n]
    assert changed and not np.allclose(streamed[changed[0]], _tensors_of_base(base, changed[0], tmp_path))


def _tensors_of_base(base, gguf_name, tmp_path):
    """The same tensor without the LoRA: the merge must have changed it."""
    from export.gguf_llm import write_gguf_tensors
    from export.lazy_llm import folder_tensors
    from train.tokenizer import train_tiny_tokenizer

    write_gguf_tensors(base.config, folder_tensors(tmp_path / "qwen", base.config), train_tiny_tokenizer(256),
                       tmp_path / "base.gguf", "f32", 0, 1)
    return _tensors(tmp_path / "base.gguf")[gguf_name]


def test_a_random_weight_bundle_written_as_it_goes_answers(tmp_path, clip_path):
    from export.bundle import export_bundle_streamed
    from export.lazy_llm import random_lora, random_tensors
    from runtime.media import read_clip_for
    from runtime.pipeline import Pipeline
    from train.config import tiny
    from train.model import AffectGPT, build_parts

    cfg = tiny(seed=2)
    model = AffectGPT(cfg, *build_parts(cfg, llm_on_meta=True))
    config = model.llm.get_base_model().config
    assert next(model.llm.get_base_model().parameters()).is_meta  # nothing of the LLM is allocated
    lora = random_lora(config, cfg.lora_targets, cfg.lora_r, cfg.lora_alpha)
    manifest = export_bundle_streamed(model, random_tensors(config, seed=2, lora=lora), tmp_path / "b",
                                      random_weights=True)
    assert manifest.weights == "random" and manifest.dims.llm_width == config.hidden_size
    pipeline = Pipeline(tmp_path / "b")
    try:
        clip = read_clip_for(clip_path, pipeline.manifest.preprocessing)
        answer = pipeline.answer(pipeline.features(clip).fused, "Nice to see you.")
    finally:
        pipeline.close()
    assert answer.token_ids and answer.prompt_tokens > 10


@pytest.mark.slow
def test_a_checkpoint_over_a_local_llm_folder_streams_to_the_bundle_the_in_memory_export_writes(tmp_path):
    """python -m pytest -m slow tests/export/test_streamed.py (two exports, about a minute)"""
    import hashlib
    import json

    import torch

    from tests.conftest import run_cli, save_tiny_parts
    from train.checkpoint import save_checkpoint
    from train.config import affectgpt_7b
    from train.model import AffectGPT

    _, *folders = save_tiny_parts(tmp_path, seed=5)
    model = AffectGPT.build(affectgpt_7b(*folders))
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:  # a trained fusion and LoRA: the merge must matter
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    save_checkpoint(model, tmp_path / "ckpt")
    streamed = run_cli("export", "--checkpoint", str(tmp_path / "ckpt"), "--stream", "--out", str(tmp_path / "s"))
    assert streamed.returncode == 0, streamed.stderr
    assert json.loads(streamed.stdout)["peak_anon_mb"] > 0
    memory = run_cli("export", "--checkpoint", str(tmp_path / "ckpt"), "--out", str(tmp_path / "m"))
    assert memory.returncode == 0, memory.stderr
    for name in ("vision.onnx", "audio.onnx", "fusion.onnx"):
        assert hashlib.sha256((tmp_path / "s" / name).read_bytes()).digest() == \
            hashlib.sha256((tmp_path / "m" / name).read_bytes()).digest(), name
    a, b = _tensors(tmp_path / "s" / "llm-f16.gguf"), _tensors(tmp_path / "m" / "llm-f16.gguf")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name].astype(np.float32), b[name].astype(np.float32), rtol=0, atol=2e-3, err_msg=name)
    refused = run_cli("export", "--preset", "tiny", "--random-weights", "--stream", "--out", str(tmp_path / "x"))
    assert refused.returncode == 2 and "--stream applies to --checkpoint" in refused.stderr
