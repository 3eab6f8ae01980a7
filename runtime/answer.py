"""Answering: fused rows + subtitle + task → the LLM's answer, one function over whichever LLM it is given.

Like llama.cpp's `mtmd_helper_eval_chunks`, it takes the context it is handed: the pipeline passes its own
LLM, the accuracy gate passes each quantized variant's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from runtime import prompt as prompts
from runtime.llm import LLM
from runtime.manifest import PromptSpec
from runtime.task import Task


@dataclass
class Answer:
    text: str
    labels: list[str]
    token_ids: list[int]
    prompt_tokens: int
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def prompt_pieces(llm: LLM, prompt: PromptSpec, fused: np.ndarray, subtitle: str, question: str) -> list:
    """Text ids with the fused rows of each placeholder, in prompt order (bos first if the manifest says so)."""
    spans = prompts.placeholder_spans(prompt.placeholder_rows, prompt.placeholders)
    pieces: list = [[prompt.bos_id]] if prompt.inference_bos else []
    for seg in prompts.segments(prompt.template, subtitle, question):
        if prompts.is_placeholder(seg):
            pieces.append(fused[spans[seg]])
        elif seg:
            ids = llm.tokenize(seg)
            if pieces and isinstance(pieces[-1], list):  # bos joins the static start of the prompt
                pieces[-1] = pieces[-1] + ids
            else:
                pieces.append(ids)
    return pieces


def answer(llm: LLM, prompt: PromptSpec, fused: np.ndarray, subtitle: str, task: Task) -> Answer:
    """Fused rows [rows, H] → the answer to `task`, with llm_prefill / time_to_first_token / llm_decode times."""
    gen = llm.generate(prompt_pieces(llm, prompt, fused, subtitle, task.question), task.max_new_tokens,
                       prompt.eos_id, prompt.stop_text, grammar=task.grammar)
    text = prompts.clean_answer(gen.text, prompt.stop_text)
    timings = {"llm_prefill": gen.prefill_ms, "time_to_first_token": gen.first_token_ms, "llm_decode": gen.decode_ms}
    return Answer(text, prompts.parse_labels(text), gen.ids, gen.prompt_tokens, timings)
