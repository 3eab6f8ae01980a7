"""Answering: fused rows + subtitle + task → the LLM's answer, one function over whichever LLM it is given.

Like llama.cpp's `mtmd_helper_eval_chunks`, it takes the context it is handed: the pipeline passes its own
LLM, the accuracy gate passes each quantized variant's.
"""

from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass, field

import numpy as np

from runtime import prompt as prompts
from runtime.llm import LLM
from runtime.manifest import PromptSpec
from runtime.sampler import generate, generate_many
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


def prompt_chunks(llm: LLM, prompt: PromptSpec, subtitle: str, question: str) -> list:
    """The bundle's prompt as chunks (runtime/prompt.py): token ids split by the GGUF's tokenizer, a Slot per
    placeholder, bos first if the manifest says so."""
    return prompts.prompt_chunks(prompt.template, subtitle, question, llm.tokenize, prompt.placeholder_rows,
                                 prompt.placeholders, prompt.bos_id if prompt.inference_bos else None)


def prompt_pieces(llm: LLM, prompt: PromptSpec, fused: np.ndarray, subtitle: str, question: str) -> list:
    """The chunks the LLM takes: token ids, and the fused rows [n, H] of each placeholder, in prompt order."""
    return prompts.fill_slots(prompt_chunks(llm, prompt, subtitle, question), fused)


# Per LLM and (opening, grammar): whether greedy decoding, run in full on the first answer, opened with the forced ids.
_CHECKED: "weakref.WeakKeyDictionary[LLM, dict[tuple, bool]]" = weakref.WeakKeyDictionary()


def opening_ids(llm: LLM, opening: str) -> list[int]:
    """The ids of an answer's fixed opening as the tokenizer splits it inside a whole answer (the split training
    taught): the tokens of `opening` and a next word that lie wholly within `opening`."""
    if not opening:
        return []
    target, text, ids = opening.encode(), b"", []
    for token in llm.tokenize(opening + "a"):
        text += llm.token_bytes(token)
        if not target.startswith(text):
            break
        ids.append(token)
    return ids


def fit_subtitle(llm: LLM, prompt: PromptSpec, subtitle: str, task: Task, rows: int | None = None) -> tuple[str, bool]:
    """The subtitle cut (at its end) so that the prompt and the task's answer fit the LLM's context.
    → (subtitle, whether it was cut)."""
    rows = sum(prompt.placeholder_rows) if rows is None else rows
    budget = llm.n_ctx - task.max_new_tokens
    cut = False
    for _ in range(4):  # re-tokenising a cut text can shift a token or two: check again
        chunks = prompt_chunks(llm, prompt, subtitle, task.question)
        n = rows + sum(len(c) for c in chunks if not isinstance(c, prompts.Slot))
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
    A subtitle too long for the context is cut to fit (`subtitle_cut`). The opening the task's grammar fixes is fed
    instead of chosen once the first answer on this LLM, decoded in full, has opened with the very same ids."""
    pieces = prompt_pieces(llm, prompt, fused, subtitle, task.question)
    cut = False
    if sum(len(p) for p in pieces) + task.max_new_tokens > llm.n_ctx:
        subtitle, cut = fit_subtitle(llm, prompt, subtitle, task, len(fused))
        pieces = prompt_pieces(llm, prompt, fused, subtitle, task.question)
    opening = opening_ids(llm, task.opening) if task.grammar else []
    key = (task.opening, task.grammar)
    checked = _CHECKED.setdefault(llm, {}).get(key)
    gen = generate(llm, pieces, task.max_new_tokens, prompt.eos_id, prompt.stop_text, grammar=task.grammar,
                   forced=opening if checked else ())
    if opening and checked is None and len(gen.ids) > len(opening):
        _CHECKED[llm][key] = gen.ids[:len(opening)] == opening  # a model that opens otherwise is never forced
    text = prompts.clean_answer(gen.text, prompt.stop_text)
    timings = {"llm_prefill": gen.prefill_ms, "time_to_first_token": gen.first_token_ms, "llm_decode": gen.decode_ms}
    return Answer(text, prompts.parse_labels(text), gen.ids, gen.prompt_tokens, timings, subtitle_cut=cut)


def answer_many(llm: LLM, prompt: PromptSpec, fused: list[np.ndarray], subtitle: str, task: Task) -> list[Answer]:
    """`answer` for several people of one window — their fused rows [rows, H] each, the window's subtitle — in one
    llama.cpp batch: sequence i of `llm` (llm.n_seq ≥ len(fused)) answers fused[i]. The shared start of the prompt is
    evaluated once. The timings are the batch's, the same in every answer."""
    if len(fused) == 1:
        return [answer(llm, prompt, fused[0], subtitle, task)]
    cut = False
    pieces = [prompt_pieces(llm, prompt, f, subtitle, task.question) for f in fused]
    if max(sum(len(p) for p in ps) for ps in pieces) + task.max_new_tokens > llm.n_ctx:
        subtitle, cut = fit_subtitle(llm, prompt, subtitle, task, max(len(f) for f in fused))
        pieces = [prompt_pieces(llm, prompt, f, subtitle, task.question) for f in fused]
    opening = opening_ids(llm, task.opening) if task.grammar else []
    checked = _CHECKED.setdefault(llm, {}).get((task.opening, task.grammar))
    if opening and checked is None:  # as `answer`: the first answer on this LLM is decoded in full and checked
        return [answer(llm, prompt, fused[0], subtitle, task)] + answer_many(llm, prompt, fused[1:], subtitle, task)
    gens = generate_many(llm, pieces, task.max_new_tokens, prompt.eos_id, prompt.stop_text, grammar=task.grammar,
                         forced=opening if checked else ())
    out = []
    for gen in gens:
        text = prompts.clean_answer(gen.text, prompt.stop_text)
        timings = {"llm_prefill": gen.prefill_ms, "time_to_first_token": gen.first_token_ms, "llm_decode": gen.decode_ms}
        out.append(Answer(text, prompts.parse_labels(text), gen.ids, gen.prompt_tokens, timings, subtitle_cut=cut))
    return out
