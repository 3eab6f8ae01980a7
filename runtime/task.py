"""The task table: what the model is asked, how its answer is constrained, and how long it may be.

One entry per task, in the style of whisper's `DecodingOptions`; the stream, `--clip`, the accuracy gate
and the held-out evaluation all take a task from here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from runtime.prompt import DESCRIPTION_QUESTION, OV_ANSWER_PREFIX, OV_QUESTION

# The labels answer always parses: the OV sentence with 1–6 lower-case words or short phrases.
LABELS_GRAMMAR = (
    'root ::= "' + OV_ANSWER_PREFIX + '" label (", " label){0,5} "."\n'
    "label ::= [a-z] [a-z-]{1,19} (\" \" [a-z] [a-z-]{1,19})?\n"
)


@dataclass(frozen=True)
class Task:
    name: str
    question: str
    grammar: str | None  # GBNF that the answer must follow; None: free text
    max_new_tokens: int
    opening: str = ""  # the text every answer starts with, which the grammar fixes: fed, not chosen

    def with_budget(self, max_new_tokens: int | None) -> "Task":
        return self if not max_new_tokens else dataclasses.replace(self, max_new_tokens=max_new_tokens)

    def unconstrained(self) -> "Task":
        """The same question without the grammar: free decoding, as the official evaluation runs it (nothing fixes
        the opening then)."""
        return dataclasses.replace(self, grammar=None, opening="")


# Budgets sized for a live window: a labels answer is ~15 tokens, a reasoning ~100–200. The official
# evaluation decodes up to 1200 tokens (and its judge up to 512): pass --max-new-tokens to match it.
TASKS = {
    "labels": Task("labels", OV_QUESTION, LABELS_GRAMMAR, 48, OV_ANSWER_PREFIX),  # open-vocabulary labels (OV question)
    "describe": Task("describe", DESCRIPTION_QUESTION, None, 256),  # free-form reasoning
}


def get_task(name: str, max_new_tokens: int | None = None) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}: choose from {', '.join(TASKS)}")
    return TASKS[name].with_budget(max_new_tokens)


# Free-form text → OV labels: AffectGPT's `reason_to_openset_qwen` instruction (github.com/zeroQiaoba/AffectGPT,
# `AffectGPT/toolkit/utils/qwen.py`, Apache-2.0), word for word, in a user turn of a chat model's template. The
# accuracy judge scores answers with it; the annotation engine turns its descriptions into labels with it.
OPENSET_INSTRUCTION = (
    "Please assume the role of an expert in the field of emotions. "
    "We provide clues that may be related to the emotions of the characters. Based on the provided clues, please "
    "identify the emotional states of the main character. "
    "The main character is the one with the most detailed clues. "
    "Please separate different emotional categories with commas and output only the clearly identifiable "
    "emotional categories in a list format. "
    "If none are identified, please output an empty list. "
    "Input: We cannot recognize his emotional state; Output: [] "
    "Input: His emotional state is happy, sad, and angry; Output: [happy, sad, angry] "
    "Input: {answer}; Output: "
)
OPENSET_MAX_TOKENS = 512  # the official judge's cap


def openset_grammar(vocabulary, max_labels: int = 8) -> str:
    """GBNF: "[" then up to `max_labels` words of `vocabulary` separated by ", ", then "]" — the instruction's
    list format, always parseable, every word one the caller can map."""
    words = sorted({w.strip().lower() for w in vocabulary if w and w.strip()})
    alternatives = " | ".join('"' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in words)
    return f'root ::= "[" (label (", " label){{0,{max_labels - 1}}})? "]"\nlabel ::= {alternatives}\n'

