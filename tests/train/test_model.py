import torch

from runtime.manifest import FUSED_ORDER
from train.model import AttentionFusion


def test_fusion_is_raw_linear_weights_no_softmax():
    torch.manual_seed(0)
    fusion = AttentionFusion(6, 10, 16)
    face, audio = torch.randn(2, 8, 6), torch.randn(2, 8, 10)
    out = fusion(face, audio)
    assert out.shape == (2, 3, 16)
    # face token by hand: unnormalised score-weighted sum, then projection
    s = face @ fusion.video_attention_mlp.weight.T + fusion.video_attention_mlp.bias
    face_token = fusion.affectgpt_proj((s * face).sum(1))
    assert torch.allclose(out[:, FUSED_ORDER.index("<FaceHere>")], face_token, atol=1e-6)
    # multi token by hand: g has no softmax, so its rows need not sum to 1
    u, w = fusion.multi_video_embs(face.mean(1)), fusion.multi_audio_embs(audio.mean(1))
    g = fusion.fc_att(fusion.attention_mlp(torch.cat([u, w], -1)))
    assert not torch.allclose(g.sum(-1), torch.ones(2))
    multi = fusion.multi_llama_proj(g[:, :1] * u + g[:, 1:] * w)
    assert torch.allclose(out[:, FUSED_ORDER.index("<MultiHere>")], multi, atol=1e-6)


def test_loss_is_on_the_answer_and_decreases(tiny_model):
    import copy

    model = copy.deepcopy(tiny_model).train()
    prep = model.cfg.preprocessing
    pixels = torch.randn(1, 8, 3, prep.image_size, prep.image_size)
    clips = torch.randn(1, 8, prep.clip_samples)
    answer = "The character's emotional state is happy, excited."
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(20):
        loss = model(pixels, clips, ["What a day!"], [answer])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8
    frozen = [p for p in model.vision.parameters()] + [p for p in model.audio.parameters()]
    assert not any(p.requires_grad for p in frozen)


def test_checkpoint_holds_trainable_parameters_only(tiny_checkpoint):
    from safetensors.torch import load_file

    keys = load_file(str(tiny_checkpoint / "trainable.safetensors")).keys()
    assert any("lora_A" in k for k in keys) and any(k.startswith("fusion.") for k in keys)
    assert not any(k.startswith(("vision.", "audio.")) for k in keys)
    assert not any("embed_tokens" in k for k in keys)
