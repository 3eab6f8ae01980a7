"""A LoRA-merged HF Qwen2 causal LM + its byte-level BPE tokenizer → one GGUF file (gguf's GGUFWriter).

Table-driven: HF config fields → GGUF keys in HPARAMS, HF tensor names → GGUF names through gguf's own
tensor map. Qwen2 needs no rope permutation of q/k (Llama would). 1-D tensors (norms, biases) stay F32.
"""

from __future__ import annotations

import json
import os
from typing import Callable

import gguf
import numpy as np
from tokenizers import Tokenizer

from runtime.atomic import atomic_file

ARCHITECTURES = {"Qwen2ForCausalLM": gguf.MODEL_ARCH.QWEN2}
FILE_TYPES = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16}

# GGUFWriter method → how to read it off the HF config.
HPARAMS = {
    "add_context_length": lambda c: c.max_position_embeddings,
    "add_embedding_length": lambda c: c.hidden_size,
    "add_block_count": lambda c: c.num_hidden_layers,
    "add_feed_forward_length": lambda c: c.intermediate_size,
    "add_head_count": lambda c: c.num_attention_heads,
    "add_head_count_kv": lambda c: c.num_key_value_heads,
    "add_rope_freq_base": lambda c: float((getattr(c, "rope_parameters", None) or {}).get("rope_theta", getattr(c, "rope_theta", 10000.0))),
    "add_layer_norm_rms_eps": lambda c: float(c.rms_norm_eps),
}


def tokenizer_tables(tokenizer: Tokenizer, n_vocab: int) -> tuple[list[str], list[int], list[str]]:
    """(tokens, token types, merges) padded to the embedding's row count, as llama.cpp's gpt2 vocab wants."""
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    special = {t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special}
    by_id = {i: t for t, i in vocab.items()}
    if max(by_id) >= n_vocab:
        raise ValueError(f"tokenizer has id {max(by_id)} but the LLM embeds only {n_vocab} rows")
    tokens, types = [], []
    for i in range(n_vocab):
        token = by_id.get(i)
        if token is None:  # embedding rows beyond the tokenizer (Qwen pads to a multiple of 128)
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL if token in special else gguf.TokenType.NORMAL)
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    return tokens, types, merges


# One tensor of the LLM, made when it is written: (HF name, shape, → its fp32 values). A GGUF written from these
# holds one tensor in memory at a time (plus what the maker needs), however large the model.
LazyTensor = tuple[str, tuple[int, ...], Callable[[], np.ndarray]]


def model_tensors(llm) -> list[LazyTensor]:
    """The tensors of a model in memory (a merged transformers causal LM), in state-dict order."""
    state = llm.state_dict()
    if llm.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # llama.cpp reuses token_embd
    return [(name, tuple(t.shape), lambda t=t: t.detach().float().cpu().numpy()) for name, t in state.items()]


def write_gguf(llm, tokenizer: Tokenizer, path: str | os.PathLike, file_type: str, bos_id: int, eos_id: int,
               name: str = "affectgpt-llm") -> None:
    """Write `llm` (a merged transformers causal LM, fp32) as GGUF of `file_type` ("f32" | "f16") to `path`."""
    write_gguf_tensors(llm.config, model_tensors(llm), tokenizer, path, file_type, bos_id, eos_id, name)


def write_gguf_tensors(config, tensors: list[LazyTensor], tokenizer: Tokenizer, path: str | os.PathLike,
                       file_type: str, bos_id: int, eos_id: int, name: str = "affectgpt-llm",
                       progress: Callable[[int], None] | None = None) -> None:
    """Write the LLM of HF `config` as GGUF, each tensor made, converted and written in turn (the header first: the
    tensor table needs only the shapes). `progress(bytes)` after each tensor."""
    arch_name = config.architectures[0] if getattr(config, "architectures", None) else "Qwen2ForCausalLM"
    if arch_name not in ARCHITECTURES:
        raise ValueError(f"no GGUF mapping for {arch_name}; supported: {', '.join(ARCHITECTURES)}")
    arch = ARCHITECTURES[arch_name]
    tensor_map = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    shapes = {hf_name: shape for hf_name, shape, _ in tensors}
    plan = []
    for hf_name, shape, make in tensors:
        gguf_name = tensor_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ValueError(f"no GGUF name for tensor {hf_name}")
        dtype = np.dtype(np.float16 if file_type == "f16" and len(shape) == 2 else np.float32)  # 1-D stays F32
        plan.append((gguf_name, shape, dtype, make))

    with atomic_file(path) as tmp:
        writer = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[arch])
        writer.add_name(name)
        writer.add_file_type(FILE_TYPES[file_type])
        for method, read in HPARAMS.items():
            getattr(writer, method)(read(config))
        tokens, types, merges = tokenizer_tables(tokenizer, shapes["model.embed_tokens.weight"][0])
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("qwen2")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(merges)
        writer.add_bos_token_id(bos_id)
        writer.add_eos_token_id(eos_id)
        writer.add_pad_token_id(eos_id)
        writer.add_add_bos_token(False)  # the runtime places bos itself, as training does
        for gguf_name, shape, dtype, _ in plan:
            writer.add_tensor_info(gguf_name, shape, dtype, int(np.prod(shape)) * dtype.itemsize)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for gguf_name, shape, dtype, make in plan:
            array = make()
            if array.shape != tuple(shape):
                raise ValueError(f"{gguf_name}: made {list(array.shape)}, announced {list(shape)}")
            array = np.ascontiguousarray(array, dtype=dtype)
            writer.write_tensor_data(array)
            if progress:
                progress(array.nbytes)
            del array
        writer.close()
