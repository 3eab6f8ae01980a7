"""Optional judge for answers that are not in the OV format: a local GGUF model, prompted with the official
extraction instruction in a user turn of the model's chat template, its output grammar-constrained to a
bracketed list of emotion-wheel words.

The instruction is AffectGPT's `reason_to_openset_qwen` (github.com/zeroQiaoba/AffectGPT,
`AffectGPT/toolkit/utils/qwen.py`, Apache-2.0), word for word. The official scoring samples a Qwen2.5-7B judge
(temperature 0.7, up to 512 tokens); this one decodes greedily with the same cap, so a given model and answer
always give the same labels.
"""

from __future__ import annotations

import os

from runtime.task import OPENSET_INSTRUCTION as INSTRUCTION  # noqa: F401 — the instruction's home is the task table
from runtime.task import OPENSET_MAX_TOKENS as MAX_TOKENS
from runtime.task import openset_grammar as label_grammar


class Judge:
    """Free-form answer → label list, with a local GGUF model (llama-cpp-python)."""

    def __init__(self, gguf_path: str | os.PathLike, vocabulary, n_ctx: int = 2048, n_threads: int | None = None):
        from llama_cpp import Llama, LlamaGrammar

        self.llm = Llama(model_path=str(gguf_path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)
        self.grammar = LlamaGrammar.from_string(label_grammar(vocabulary), verbose=False)
        self.path = str(gguf_path)

    def labels(self, answer: str, max_tokens: int = MAX_TOKENS) -> list[str]:
        from benchmarks.emotion_wheel import string_to_list

        messages = [{"role": "user", "content": INSTRUCTION.format(answer=answer.strip())}]
        out = self.llm.create_chat_completion(messages, grammar=self.grammar, max_tokens=max_tokens,
                                              temperature=0.0, top_k=1)
        return string_to_list(out["choices"][0]["message"]["content"])
