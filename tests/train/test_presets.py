"""The affectgpt-7b preset loads each part from a local folder; checked here with tiny parts saved to disk."""

import torch

from tests.conftest import save_tiny_parts
from train.config import affectgpt_7b
from train.model import AffectGPT


def test_pretrained_parts_load_from_local_folders(tmp_path):
    (vision, audio, llm, tokenizer), *folders = save_tiny_parts(tmp_path, seed=5)
    local = affectgpt_7b(*folders)
    assert local.preprocessing.channel_order == "bgr" and local.preprocessing.image_size == 224
    model = AffectGPT.build(local).eval()
    for name, p in vision.clip.state_dict().items():
        assert torch.equal(model.vision.clip.state_dict()[name], p), name
    assert torch.equal(model.llm.get_input_embeddings().weight, llm.get_input_embeddings().weight)
    assert model.tokenizer.get_vocab() == tokenizer.get_vocab()
    assert model.bos_id == tokenizer.token_to_id("<|im_start|>")
