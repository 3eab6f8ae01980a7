"""The runtime answers like the PyTorch model: token for token in F32, within a logit tolerance in F16."""

import numpy as np
import pytest
import torch

from runtime.manifest import BundleError, file_entry, read_manifest, write_manifest
from runtime.media import read_clip
from runtime.answer import prompt_pieces
from runtime.pipeline import Pipeline, RuntimeOptions
from runtime.preprocess import audio_clips, pixel_values
from runtime.task import TASKS

SUBTITLE = "I can't believe you did that again."
EXACT = RuntimeOptions(flash_attn=False, kv_f32=True)
FREE = TASKS["labels"].unconstrained().with_budget(24)  # PyTorch's generate decodes without a grammar


def _torch_inputs(model, clip):
    prep = model.cfg.preprocessing
    return torch.from_numpy(pixel_values(clip.frames, prep)), torch.from_numpy(audio_clips(clip.waveform, prep))


def test_f32_greedy_answer_equals_pytorch_token_for_token(tiny_model, bundle_f32, clip_path):
    pipeline = Pipeline(bundle_f32, EXACT)
    answer = pipeline.answer_file(clip_path, SUBTITLE, FREE)
    expected = tiny_model.generate(*_torch_inputs(tiny_model, read_clip(clip_path)), SUBTITLE, max_new_tokens=24)
    assert answer.token_ids == expected
    assert len(expected) > 0
    assert answer.prompt_tokens == len(tiny_model.prompt_ids(SUBTITLE, bos=False))  # no bos at inference
    assert {"decode", "face", "preprocess", "vision", "audio", "fusion", "llm_prefill", "llm_decode", "total"} <= set(answer.timings_ms)
    pipeline.close()


def test_f16_last_logits_within_tolerance(tiny_model, bundle_f16, clip_path):
    pipeline = Pipeline(bundle_f16, RuntimeOptions())
    clip = read_clip(clip_path)
    fused = pipeline.features(clip).fused
    pipeline.llm.reset()
    got = pipeline.llm.feed(prompt_pieces(pipeline.llm, pipeline.manifest.prompt, fused, SUBTITLE, FREE.question))
    pixels, clips = _torch_inputs(tiny_model, clip)
    with torch.no_grad():
        fused_t = tiny_model.encode(pixels[None], clips[None])[0]
        embeds = tiny_model.embed(tiny_model.prompt_ids(SUBTITLE, bos=False), fused_t)
        want = tiny_model.llm(inputs_embeds=embeds[None]).logits[0, -1].numpy()
    assert np.abs(got - want).max() < 0.05 * max(1.0, want.std())
    assert got.argmax() == want.argmax()
    pipeline.close()


def test_llm_chunks_prompts_longer_than_n_batch(bundle_f32):
    from runtime.llm import LLM

    llm = LLM(bundle_f32 / "llm-f32.gguf", n_batch=16, flash_attn=False, kv_f32=True)
    ids = llm.tokenize("The subtitle of this video is a long sentence that needs several batches. " * 3)
    assert len(ids) > 40
    chunked = llm.feed([ids])
    llm.reset()
    rows = llm.feed([ids[:7], ids[7:]], all_logits=True)
    assert rows.shape == (len(ids), llm.n_vocab)
    assert np.abs(rows[-1] - chunked).max() < 1e-4
    llm.close()


def test_bundle_whose_fusion_width_does_not_fit_the_gguf_is_refused(bundle_copy):
    from export.encoders import FUSION_GRAPH, export_graph
    from train.model import AttentionFusion

    manifest = read_manifest(bundle_copy)
    dv, da = manifest.dims.vision_dim, manifest.dims.audio_dim
    wide = AttentionFusion(dv, da, 512)
    export_graph(wide, FUSION_GRAPH, (torch.randn(2, 8, dv), torch.randn(2, 8, da)), bundle_copy)
    manifest.files["fusion"] = file_entry(bundle_copy, "fusion.onnx", "fp32")
    manifest.dims = type(manifest.dims)(dv, da, 512, manifest.dims.vocab_size)
    write_manifest(bundle_copy, manifest)
    with pytest.raises(BundleError) as err:
        Pipeline(bundle_copy)
    assert "512" in str(err.value) and "256" in str(err.value)


def test_fusion_that_disagrees_with_its_manifest_is_refused(bundle_copy):
    manifest = read_manifest(bundle_copy)
    manifest.dims = type(manifest.dims)(manifest.dims.vision_dim, manifest.dims.audio_dim, 128, manifest.dims.vocab_size)
    write_manifest(bundle_copy, manifest)
    with pytest.raises(BundleError, match="fusion.onnx output has width 256 but the manifest's llm_width is 128"):
        Pipeline(bundle_copy)
