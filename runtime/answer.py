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
    subtitle_cut: bool = False  # the subtitle was cut to fit the context

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


def fit_subtitle(llm: LLM, prompt: PromptSpec, subtitle: str, task: Task, rows: int | None = None) -> tuple[str, bool]:
    """The subtitle cut (at its end) so that the prompt and the task's answer fit the LLM's context.
    → (subtitle, whether it was cut)."""
    rows = sum(prompt.placeholder_rows) if rows is None else rows
    budget = llm.n_ctx - task.max_new_tokens
    cut = False
    for _ in range(4):  # re-tokenising a cut text can shift a token or two: check again
        n = rows + int(prompt.inference_bos) + sum(len(llm.tokenize(seg)) for seg in
                                                   prompts.segments(prompt.template, subtitle, task.question)
                                                   if seg and not prompts.is_placeholder(seg))
        if n <= budget:
            return subtitle, cut
        ids = llm.tokenize(prompts.sanitize_subtitle(subtitle))
        keep = len(ids) - (n - budget) - 4
        if keep <= 0:
            return "", True
        subtitle, cut = llm.detokenize(ids[:keep]).strip(), True
    return "", True


def answer(llm: LLM, prompt: PromptSpec, fused: np.ndarray, subtitle: str, task: Task) -> Answer:
    """Fused rows [rows, H] → the answer to `task`, with llm_prefill / time_to_first_token / llm_decode times.
    A subtitle too long for the context is cut to fit (`subtitle_cut`)."""
    pieces = prompt_pieces(llm, prompt, fused, subtitle, task.question)
    cut = False
    if sum(len(p) for p in pieces) + task.max_new_tokens > llm.n_ctx:
        subtitle, cut = fit_subtitle(llm, prompt, subtitle, task, len(fused))
        pieces = prompt_pieces(llm, prompt, fused, subtitle, task.question)
    gen = llm.generate(pieces, task.max_new_tokens, prompt.eos_id, prompt.stop_text, grammar=task.grammar)
    text = prompts.clean_answer(gen.text, prompt.stop_text)
    timings = {"llm_prefill": gen.prefill_ms, "time_to_first_token": gen.first_token_ms, "llm_decode": gen.decode_ms}
    return Answer(text, prompts.parse_labels(text), gen.ids, gen.prompt_tokens, timings, subtitle_cut=cut)
