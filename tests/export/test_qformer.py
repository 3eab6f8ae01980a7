"""The Q-Former fusion variant: more rows per placeholder, through export and the runtime."""

import json

import torch

from runtime.media import read_clip
from runtime.pipeline import Pipeline, RuntimeOptions
from runtime.preprocess import audio_clips, pixel_values
from runtime.task import TASKS


def test_qformer_variant_exports_and_answers_like_pytorch(tmp_path, clip_path):
    from export.bundle import export_bundle
    from train.config import tiny
    from train.model import AffectGPT

    cfg = tiny(seed=4)
    cfg.fusion = "qformer"
    cfg.qformer = dict(width=64, heads=4, queries=(4, 2, 6), positions=(32, 8, 8))
    model = AffectGPT.build(cfg).eval()
    export_bundle(model, tmp_path / "b", "f32")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["prompt"]["placeholder_rows"] == [4, 2, 6]

    pipeline = Pipeline(tmp_path / "b", RuntimeOptions(flash_attn=False, kv_f32=True))
    answer = pipeline.answer_file(clip_path, "Fine.", TASKS["labels"].unconstrained().with_budget(12))
    clip = read_clip(clip_path)
    prep = cfg.preprocessing
    expected = model.generate(torch.from_numpy(pixel_values(clip.frames, prep)),
                              torch.from_numpy(audio_clips(clip.waveform, prep)), "Fine.", max_new_tokens=12)
    assert answer.token_ids == expected
    assert answer.prompt_tokens == len(model.prompt_ids("Fine.", bos=False))
    pipeline.close()
