"""The frame model (raw frames at <FrameHere>, no face extractor) through export, manifest and runtime."""

import json

import torch

from runtime.media import read_clip
from runtime.pipeline import Pipeline, RuntimeOptions
from runtime.preprocess import audio_clips, pixel_values
from runtime.task import TASKS
from tests.conftest import run_cli


def test_frame_model_exports_and_answers_like_pytorch_without_a_face_detector(clip_path, tmp_path):
    from export.bundle import export_bundle
    from train.config import tiny_frame
    from train.model import AffectGPT

    model = AffectGPT.build(tiny_frame(seed=6)).eval()
    export_bundle(model, tmp_path / "b", "f32")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["prompt"]["placeholders"] == ["<MultiHere>", "<AudioHere>", "<FrameHere>"]
    assert "<FrameHere>" in manifest["prompt"]["template"] and "<FaceHere>" not in manifest["prompt"]["template"]
    assert manifest["preprocessing"]["face_crop"] is False

    pipeline = Pipeline(tmp_path / "b", RuntimeOptions(flash_attn=False, kv_f32=True))
    answer = pipeline.answer_file(clip_path, "Fine.", TASKS["labels"].unconstrained().with_budget(12))
    clip = read_clip(clip_path)
    prep = model.cfg.preprocessing
    expected = model.generate(torch.from_numpy(pixel_values(clip.frames, prep)),
                              torch.from_numpy(audio_clips(clip.waveform, prep)), "Fine.", max_new_tokens=12)
    assert answer.token_ids == expected and len(expected) > 0
    assert answer.prompt_tokens == len(model.prompt_ids("Fine.", bos=False))
    pipeline.close()

    # no OpenCV at all: a module named cv2 that fails to import comes first on the path
    (tmp_path / "nocv").mkdir()
    (tmp_path / "nocv" / "cv2.py").write_text("raise ImportError('OpenCV is absent on this device')\n")
    env = {"PYTHONPATH": str(tmp_path / "nocv")}
    result = run_cli("runtime.stream", "--clip", str(clip_path), "--bundle", str(tmp_path / "b"), "--max-new-tokens", "32",
                     env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"].startswith("The character's emotional state is ")
    refused = run_cli("runtime.stream", "--clip", str(clip_path), "--bundle", str(tmp_path / "b"), "--face-crop",
                      "--max-new-tokens", "4", env=env)
    assert refused.returncode == 1 and "OpenCV" in refused.stderr and "Traceback" not in refused.stderr
