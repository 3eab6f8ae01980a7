"""The affectgpt-7b preset loads each part from a local folder; checked here with tiny parts saved to disk."""

import torch

from train.config import affectgpt_7b, tiny
from train.model import AffectGPT, build_parts


def test_pretrained_parts_load_from_local_folders(tmp_path):
    cfg = tiny(seed=5)
    vision, audio, llm, tokenizer = build_parts(cfg)
    vision.clip.save_pretrained(tmp_path / "clip")
    audio.hubert.save_pretrained(tmp_path / "hubert")
    llm.save_pretrained(tmp_path / "qwen")
    tokenizer.save(str(tmp_path / "qwen" / "tokenizer.json"))

    local = affectgpt_7b(str(tmp_path / "clip"), str(tmp_path / "hubert"), str(tmp_path / "qwen"))
    assert local.preprocessing.channel_order == "bgr" and local.preprocessing.image_size == 224
    model = AffectGPT.build(local).eval()
    for name, p in vision.clip.state_dict().items():
        assert torch.equal(model.vision.clip.state_dict()[name], p), name
    assert torch.equal(model.llm.get_input_embeddings().weight, llm.get_input_embeddings().weight)
    assert model.tokenizer.get_vocab() == tokenizer.get_vocab()
    assert model.bos_id == tokenizer.token_to_id("<|im_start|>")
