"""The importer against the real release's key names and shapes (from the released checkpoint's layout, on the
meta device: no 7B weights in memory), and the frame model's checkpoint."""

import json

import pytest
import torch

from tests.conftest import run_cli

V, A, M, H = 768, 1024, 1024, 3584  # CLIP ViT-L/14 projection, HuBERT-large, max(V, A), Qwen2.5-7B width
LAYERS, KV, FFN, RANK = 28, 512, 18944, 16


def released_state() -> dict:
    """The release's `ckpt["model"]`: attention fusion + peft LoRA keys with their shapes, as meta tensors."""
    shapes = {}

    def linear(name, fan_in, fan_out):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (fan_out, fan_in), (fan_out,)

    for name, fan_in, fan_out in (("video_attention_mlp", V, 1), ("affectgpt_proj", V, H), ("audio_attention_mlp", A, 1),
                                  ("audio_llama_proj", A, H), ("multi_video_embs", V, M), ("multi_audio_embs", A, M),
                                  ("attention_mlp", 2 * M, M), ("fc_att", M, 2), ("multi_llama_proj", M, H),
                                  ("image_llama_proj", V, H)):
        linear(name, fan_in, fan_out)
    projections = {"self_attn.q_proj": (H, H), "self_attn.k_proj": (H, KV), "self_attn.v_proj": (H, KV),
                   "self_attn.o_proj": (H, H), "mlp.gate_proj": (H, FFN), "mlp.up_proj": (H, FFN),
                   "mlp.down_proj": (FFN, H)}
    for i in range(LAYERS):
        for module, (fan_in, fan_out) in projections.items():
            prefix = f"llama_model.base_model.model.model.layers.{i}.{module}"
            shapes[f"{prefix}.lora_A.default.weight"] = (RANK, fan_in)
            shapes[f"{prefix}.lora_B.default.weight"] = (fan_out, RANK)
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


@pytest.fixture(scope="module")
def ours_at_7b():
    """Our AffectGPT at the release's shapes, on the meta device."""
    from train.config import full_size
    from train.model import AffectGPT

    with torch.device("meta"):
        model = AffectGPT.build(full_size("affectgpt-7b"))
    return dict(model.named_parameters())


def test_every_released_key_lands_on_a_parameter_of_the_right_shape(ours_at_7b):
    from train.import_affectgpt import lora_rank, match_state

    state = released_state()
    assert lora_rank(state) == RANK
    mapped, report = match_state(state, ours_at_7b)
    assert report["missing"] == [] and report["unmatched"] == []
    assert report["known_unused"] == ["image_llama_proj.weight", "image_llama_proj.bias"]
    assert report["mapped"] == len(state) - 2 == sum(p.requires_grad for p in ours_at_7b.values())


def test_a_release_that_does_not_fit_is_refused(ours_at_7b):
    from train.import_affectgpt import match_state

    state = released_state()
    state["affectgpt_proj.weight"] = torch.empty(H, 1024, device="meta")  # e.g. another vision encoder's width
    with pytest.raises(ValueError, match="does not fit"):
        match_state(state, ours_at_7b)
    state = released_state()
    del state["fc_att.bias"]
    with pytest.raises(ValueError, match="no value"):
        match_state(state, ours_at_7b)


def test_the_frame_model_imports_as_a_frame_model(tmp_path):
    from tests.conftest import save_tiny_parts
    from train.checkpoint import trainable_state
    from train.config import affectgpt_7b_frame
    from train.model import AffectGPT

    _, *folders = save_tiny_parts(tmp_path, seed=5)
    cfg = affectgpt_7b_frame(*folders)
    cfg.lora_r = 4
    official = {(k.replace("fusion.", "", 1) if k.startswith("fusion.") else k.replace("llm.", "llama_model.", 1)): v
                for k, v in trainable_state(AffectGPT.build(cfg)).items()}
    torch.save({"model": official}, tmp_path / "frame.pth")
    result = run_cli("train.import_affectgpt", str(tmp_path / "frame.pth"), "--model", "frame", "--clip", folders[0],
                     "--hubert", folders[1], "--llm", folders[2], "--out", str(tmp_path / "ours"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "frame"
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert "<FrameHere>" in config["template"] and "<FaceHere>" not in config["template"]
    assert config["preprocessing"]["face_crop"] is False and config["preprocessing"]["channel_order"] == "rgb"
