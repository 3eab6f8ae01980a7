"""Export parity: ONNX vs PyTorch on real clip input, GGUF vs HF, and loud failures."""

import json

import numpy as np
import pytest
import torch

from export.errors import ExportError
from runtime.encoders import Encoders
from runtime.media import read_clip
from runtime.preprocess import audio_clips, pixel_values


def test_manifest_records_files_and_parity(bundle_f16):
    raw = json.loads((bundle_f16 / "manifest.json").read_text())
    assert set(raw["files"]) == {"vision", "audio", "fusion", "llm"}
    assert raw["files"]["llm"]["kind"] == "F16"
    assert raw["parity"]["vision.onnx.max_abs_diff"] < 1e-4
    assert raw["parity"]["llm-f16.gguf.top1_agreement"] == 1.0
    assert raw["versions"]["torch"].startswith("2.")


def test_onnx_features_match_pytorch_on_a_real_clip(tiny_model, bundle_f32, clip_path):
    prep = tiny_model.cfg.preprocessing
    clip = read_clip(clip_path)
    pixels, clips = pixel_values(clip.frames, prep), audio_clips(clip.waveform, prep)
    enc = Encoders(bundle_f32 / "vision.onnx", bundle_f32 / "audio.onnx", bundle_f32 / "fusion.onnx")
    face, audio = enc.encode_frames(pixels), enc.encode_clips(clips)
    fused = enc.fuse(face, audio)
    with torch.no_grad():
        face_t = tiny_model.vision(torch.from_numpy(pixels)).numpy()
        audio_t = tiny_model.audio(torch.from_numpy(clips)).numpy()
        fused_t = tiny_model.encode(torch.from_numpy(pixels)[None], torch.from_numpy(clips)[None])[0].numpy()
    assert np.abs(face - face_t).max() < 1e-4
    assert np.abs(audio - audio_t).max() < 1e-4
    assert np.abs(fused - fused_t).max() < 1e-4
    assert fused.shape == (3, 256)


def test_export_fails_loudly_and_leaves_nothing_behind(tiny_model, tmp_path, monkeypatch):
    import export.bundle as bundle

    monkeypatch.setitem(bundle.LOGIT_TOLERANCE, "f16", 0.0)
    out = tmp_path / "never"
    with pytest.raises(ExportError, match="GGUF logits differ"):
        bundle.export_bundle(tiny_model, out, "f16")
    assert not out.exists()
    assert not list(tmp_path.iterdir())  # no partial folder either


def test_export_refuses_to_replace_a_folder_that_is_not_a_bundle(tiny_model, tmp_path):
    from export.bundle import export_bundle

    (tmp_path / "precious.txt").write_text("user data")
    with pytest.raises(ExportError, match="not a bundle"):
        export_bundle(tiny_model, tmp_path, "f16")
    assert (tmp_path / "precious.txt").read_text() == "user data"


def test_gguf_tokenizer_pads_vocab_and_marks_specials(tiny_model):
    import gguf

    from export.gguf_llm import tokenizer_tables

    n = tiny_model.tokenizer.get_vocab_size() + 5
    tokens, types, merges = tokenizer_tables(tiny_model.tokenizer, n)
    assert len(tokens) == n and tokens[-1] == f"[PAD{n - 1}]"
    assert types[tiny_model.bos_id] == gguf.TokenType.CONTROL
    assert all(" " in m for m in merges)
