"""Decoding an answer: greedy, constrained to a GBNF grammar when the task has one (llama.cpp's grammar sampler), over
whichever LLM context it is handed; an opening the task fixes is fed, not chosen.

Checking every token of a 262k-word vocabulary against the grammar costs seconds per step on two cores, so the greedy
choice is checked alone first and the whole vocabulary is filtered only when the grammar refuses it (llama.cpp's own
samplers do the same); the choice is the one full filtering would give: the highest logit the grammar allows.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import llama_cpp
import numpy as np

from runtime.vocab import LLMError

if TYPE_CHECKING:
    from runtime.llm import LLM, Chunk


class Sampler:
    """Greedy choice over [n_vocab] float32 logits, within `grammar` (GBNF, rule "root") when it is given. It follows
    the answer: `accept` each token chosen or fed, `reset` before the next answer."""

    def __init__(self, vocab, grammar: str | None = None):
        self.grammar = grammar
        self.rule = None
        if grammar:
            self.rule = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
            if not self.rule:
                raise LLMError("llama.cpp rejected the answer grammar")

    def reset(self) -> None:
        """Back to the grammar's start: a new answer."""
        if self.rule is not None:
            llama_cpp.llama_sampler_reset(self.rule)

    def allows(self, token: int) -> bool:
        """Whether the grammar, where the answer now stands, lets `token` come next."""
        if self.rule is None:
            return True
        one = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 0.0, 0.0))
        view = llama_cpp.llama_token_data_array(one, 1, -1, False)
        llama_cpp.llama_sampler_apply(self.rule, ctypes.byref(view))
        return bool(np.isfinite(one[0].logit))

    def choose(self, logits: np.ndarray) -> int:
        """[n_vocab] logits → the id greedy decoding takes here (the best one the grammar allows)."""
        best = int(np.argmax(logits))
        if self.rule is None or self.allows(best):
            return best
        cand = np.zeros(logits.size, dtype=[("id", np.int32), ("logit", np.float32), ("p", np.float32)])
        cand["id"] = np.arange(logits.size)
        cand["logit"] = logits
        view = llama_cpp.llama_token_data_array(cand.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)),
                                                logits.size, -1, False)
        llama_cpp.llama_sampler_apply(self.rule, ctypes.byref(view))
        allowed = cand["logit"]
        if not np.isfinite(allowed).any():
            raise LLMError("the answer grammar allows no next token")
        return int(cand["id"][int(np.argmax(allowed))])

    def accept(self, token: int) -> None:
        """`token` is the answer's next one: advance the grammar over it (it must be allowed)."""
        if self.rule is not None:
            llama_cpp.llama_sampler_accept(self.rule, token)

    def close(self) -> None:
        if self.rule is not None:
            llama_cpp.llama_sampler_free(self.rule)
            self.rule = None


@dataclass
class Generation:
    ids: list[int]  # the whole answer, forced opening included
    text: str
    prompt_tokens: int  # positions of the prompt
    prefill_ms: float  # the prompt, in one batch
    decode_ms: float  # the answer, forced tokens included
    first_token_ms: float = 0.0  # prompt in → first token chosen
    forced_tokens: int = 0  # answer tokens taken as given instead of chosen from logits


def generate(llm: "LLM", chunks: "Sequence[Chunk]", max_new_tokens: int, eos_id: int, stop_text: str = "",
             grammar: str | None = None, forced: Sequence[int] = (), seq_id: int = 0) -> Generation:
    """Greedy answer to a prompt of chunks on sequence `seq_id` of `llm`, within `grammar` (GBNF) when given; it
    stops at eos, after max_new_tokens or once the text holds `stop_text`.

    `forced`: ids the answer starts with, taken as given (the grammar must allow them). Each still goes through its
    own one-token llama_decode, as a decoded token would, but without the logits it needs no choice from: the KV
    cache, and so every later logit, is bit for bit what decoding them would give, and the output layer (most of a
    step's cost for a large vocabulary) runs only where a choice is made. (In one batch with the prompt they would
    be cheaper still, but a batch's kernels round differently from one token's, and near-ties then flip.)
    """
    chunks = [c for c in chunks if len(c)]
    forced = [int(t) for t in forced][:max_new_tokens]
    sampler = Sampler(llm.vocab, grammar)
    try:
        with llm.lock:  # the whole answer: another caller's tokens must not land between ours
            t0 = time.perf_counter()
            logits = llm.prefill(chunks, seq_id, n_logits=0 if forced else 1)
            t1 = time.perf_counter()
            start = llm.n_past(seq_id)
            ids: list[int] = []
            text = b""
            first_token_ms = None
            while start + len(ids) < llm.n_ctx:
                k = len(ids)
                if k < len(forced):
                    next_id = forced[k]
                    if not sampler.allows(next_id):
                        raise LLMError(f"the answer grammar does not allow forced token {next_id} at answer token {k}")
                else:
                    next_id = sampler.choose(logits[0])
                if first_token_ms is None:
                    first_token_ms = (time.perf_counter() - t0) * 1e3
                if next_id == eos_id or llm.is_end(next_id):
                    break
                sampler.accept(next_id)
                ids.append(next_id)
                text += llm.token_bytes(next_id)
                if len(ids) >= max_new_tokens or (stop_text and stop_text.encode() in text):
                    break
                logits = llm.eval_chunks([[next_id]], seq_id, n_logits=0 if k + 1 < len(forced) else 1)
            t2 = time.perf_counter()
    finally:
        sampler.close()
    return Generation(ids, text.decode("utf-8", errors="replace"), sum(len(c) for c in chunks), (t1 - t0) * 1e3,
                      (t2 - t1) * 1e3, first_token_ms or 0.0, min(len(forced), len(ids)))


def generate_many(llm: "LLM", prompts: "Sequence[Sequence[Chunk]]", max_new_tokens: int, eos_id: int,
                  stop_text: str = "", grammar: str | None = None, forced: Sequence[int] = ()) -> list[Generation]:
    """`generate` for several prompts at once, prompt i on sequence i of `llm` (llm.n_seq ≥ len(prompts)): a leading
    token chunk all prompts share is evaluated once and shared in the KV cache, the rest of every prompt goes in one
    llama_decode, then each step decodes the next token of every unfinished answer in one llama_decode. Each answer
    has its own grammar state. A batch's kernels round differently from one sequence's, so on a close call an answer
    may differ from what `generate` gives for the same prompt."""
    prompts = [[c for c in p if len(c)] for p in prompts]
    forced = [int(t) for t in forced][:max_new_tokens]
    n = len(prompts)
    first = prompts[0][0] if prompts[0] and not isinstance(prompts[0][0], np.ndarray) else None
    shared = first is not None and all(p and not isinstance(p[0], np.ndarray) and list(p[0]) == list(first)
                                       for p in prompts)
    rests = [p[1:] if shared else p for p in prompts]
    samplers = [Sampler(llm.vocab, grammar) for _ in range(n)]
    ids: list[list[int]] = [[] for _ in range(n)]
    texts = [b""] * n
    try:
        with llm.lock:
            t0 = time.perf_counter()
            llm.share_prefix(list(first) if shared else [], n)
            if llm.table is None:  # a projected input: token chunks cannot become rows of one batch
                raise LLMError("answering several people in one batch needs the LLM's token table")
            joined = [llm.table.join(r) for r in rests]
            logits = llm.eval_batch(list(enumerate(joined)), logits=not forced)
            t1 = time.perf_counter()
            active = list(range(n))
            first_token_ms = None
            k = 0
            while active:
                step = []
                for row, seq in enumerate(active):
                    if k < len(forced):
                        next_id = forced[k]
                        if not samplers[seq].allows(next_id):
                            raise LLMError(f"the answer grammar does not allow forced token {next_id} at answer token {k}")
                    else:
                        next_id = samplers[seq].choose(logits[row])
                    if next_id == eos_id or llm.is_end(next_id):
                        continue
                    samplers[seq].accept(next_id)
                    ids[seq].append(next_id)
                    texts[seq] += llm.token_bytes(next_id)
                    if len(ids[seq]) >= max_new_tokens or (stop_text and stop_text.encode() in texts[seq]):
                        continue
                    if llm.n_past(seq) + 1 >= llm.n_ctx:
                        continue
                    step.append((seq, next_id))
                if first_token_ms is None:
                    first_token_ms = (time.perf_counter() - t0) * 1e3
                active = [seq for seq, _ in step]
                if active:
                    logits = llm.eval_batch([(seq, [tok]) for seq, tok in step], logits=k + 1 >= len(forced))
                k += 1
            t2 = time.perf_counter()
    finally:
        for sampler in samplers:
            sampler.close()
    return [Generation(ids[i], texts[i].decode("utf-8", errors="replace"), sum(len(c) for c in prompts[i]),
                       (t1 - t0) * 1e3, (t2 - t1) * 1e3, first_token_ms or 0.0, min(len(forced), len(ids[i])))
            for i in range(n)]

