"""Optional judge for free-form answers: a local GGUF model, prompted with the official extraction
instruction (paraphrased), its output grammar-constrained to a bracketed list of emotion-wheel words.

The official scoring samples a Qwen2.5-7B judge (temperature 0.7); this one decodes greedily, so a given
model and answer always give the same labels.
"""

from __future__ import annotations

import os

INSTRUCTION = (
    "You are an expert in emotion analysis. Below are clues about the emotions of the people in a video. "
    "Identify the emotional states of the main character, the one the clues describe in most detail. "
    "Output only the emotion categories that can be clearly identified, as a comma-separated list in square "
    "brackets, for example [happy, excited], or [] when none can be identified.\n\n"
    "Clues: {answer}\nEmotions: "
)


def label_grammar(vocabulary, max_labels: int = 8) -> str:
    """GBNF: "[" then up to `max_labels` words of `vocabulary` separated by ", ", then "]"."""
    words = sorted({w.strip().lower() for w in vocabulary if w and w.strip()})
    alternatives = " | ".join('"' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in words)
    return f'root ::= "[" (label (", " label){{0,{max_labels - 1}}})? "]"\nlabel ::= {alternatives}\n'


class Judge:
    """Free-form answer → label list, with a local GGUF model (llama-cpp-python)."""

    def __init__(self, gguf_path: str | os.PathLike, vocabulary, n_ctx: int = 2048, n_threads: int | None = None):
        from llama_cpp import Llama, LlamaGrammar

        self.llm = Llama(model_path=str(gguf_path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)
        self.grammar = LlamaGrammar.from_string(label_grammar(vocabulary), verbose=False)
        self.path = str(gguf_path)

    def labels(self, answer: str, max_tokens: int = 64) -> list[str]:
        from benchmarks.emotion_wheel import string_to_list

        out = self.llm.create_completion(INSTRUCTION.format(answer=answer.strip()), grammar=self.grammar,
                                         max_tokens=max_tokens, temperature=0.0, top_k=1)
        return string_to_list(out["choices"][0]["text"])
