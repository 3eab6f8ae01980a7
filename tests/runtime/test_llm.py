"""The LLM context: chunks in, logits out; the prompt's static start kept in KV between answers; one caller at a time."""

import threading
import time

import llama_cpp
import numpy as np
import pytest

from runtime.answer import prompt_pieces
from runtime.llm import LLM, LLMError
from runtime.manifest import read_manifest
from runtime.sampler import generate
from runtime.task import TASKS

FREE = TASKS["labels"].unconstrained().with_budget(12)
SUBTITLES = ("I can't believe you did that again.", "Fine.", "What a lovely surprise, thank you!")


@pytest.fixture
def exact(bundle_f32):
    llm = LLM(bundle_f32 / "llm-f32.gguf", flash_attn=False, kv_f32=True)
    yield llm, read_manifest(bundle_f32, verify_hashes=False).prompt
    llm.close()


def _fused(llm, seed=0):
    return np.random.default_rng(seed).standard_normal((3, llm.n_embd)).astype(np.float32) * 0.05


def _answer(llm, prompt, subtitle, seed=0):
    pieces = prompt_pieces(llm, prompt, _fused(llm, seed), subtitle, FREE.question)
    return generate(llm, pieces, FREE.max_new_tokens, prompt.eos_id, prompt.stop_text)


@pytest.fixture
def decoded(monkeypatch):
    """Positions of each llama_decode call, and the most calls ever inside llama_decode at once."""
    real, calls, inside, lock = llama_cpp.llama_decode, [], [0, 0], threading.Lock()

    def watched(ctx, batch):
        with lock:
            inside[0] += 1
            inside[1] = max(inside[1], inside[0])
        time.sleep(0.002)  # widens the window in which a second caller would overlap
        try:
            calls.append(batch.n_tokens)
            return real(ctx, batch)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(llama_cpp, "llama_decode", watched)
    return calls, inside


def test_prefix_is_kept_between_answers_and_the_answer_equals_a_cold_run(exact, decoded):
    llm, prompt = exact
    calls, _ = decoded
    static = prompt_pieces(llm, prompt, _fused(llm), SUBTITLES[0], FREE.question)[0]
    first = _answer(llm, prompt, SUBTITLES[0])
    assert calls[0] == len(static)  # the static start goes alone, to be kept
    calls.clear()
    warm = [_answer(llm, prompt, s, seed) for seed, s in enumerate(SUBTITLES)]
    assert calls[0] == warm[0].prompt_tokens - len(static)  # the next prompt goes without it: kept in KV
    assert warm[0].ids == first.ids
    for seed, (subtitle, got) in enumerate(zip(SUBTITLES, warm)):
        llm.reset()
        cold = _answer(llm, prompt, subtitle, seed)
        assert got.ids == cold.ids and got.text == cold.text and len(cold.ids) > 0


def test_a_different_static_start_is_not_reused(exact, decoded):
    llm, prompt = exact
    calls, _ = decoded
    pieces = prompt_pieces(llm, prompt, _fused(llm), SUBTITLES[0], FREE.question)
    llm.prefill(pieces)
    calls.clear()
    other = [[pieces[0][0] + 1] + list(pieces[0][1:])] + pieces[1:]
    llm.prefill(other)
    assert calls[0] == len(other[0])  # evaluated again from position 0
    assert llm.n_past() == sum(len(p) for p in pieces)


def test_eval_chunks_returns_the_last_positions_logits_across_batches(bundle_f32):
    llm = LLM(bundle_f32 / "llm-f32.gguf", n_batch=16, flash_attn=False, kv_f32=True)
    ids = llm.tokenize("The subtitle of this video is a long sentence that needs several batches. " * 3)
    every = llm.eval_chunks([ids[:7], ids[7:]], n_logits=None)
    llm.reset()
    last = llm.eval_chunks([ids[:7], ids[7:]], n_logits=20)  # spans two llama_decode calls
    assert every.shape == (len(ids), llm.n_vocab) and last.shape == (20, llm.n_vocab)
    assert np.abs(last - every[-20:]).max() < 1e-4
    llm.reset()
    with pytest.raises(LLMError, match="logits of"):
        llm.eval_chunks([ids[:3]], n_logits=4)
    with pytest.raises(LLMError, match="sequence 1"):
        llm.eval_chunks([ids[:3]], seq_id=1)
    llm.close()


def test_truncate_drops_the_tail_so_the_next_chunk_goes_there(exact):
    llm, _ = exact
    ids = llm.tokenize("Voice and face, then the subtitle.")
    want = llm.eval_chunks([ids])[0]
    llm.reset()
    llm.eval_chunks([ids[:4] + [ids[0], ids[1]]])
    llm.truncate(0, 4)
    assert llm.n_past() == 4
    assert np.abs(llm.eval_chunks([ids[4:]])[0] - want).max() < 1e-4


def test_two_threads_on_one_context_take_turns(exact, decoded):
    llm, prompt = exact
    _, inside = decoded
    alone = {s: _answer(llm, prompt, s).ids for s in SUBTITLES[:2]}
    got = {s: [] for s in alone}

    def run(subtitle):
        for _ in range(3):
            got[subtitle].append(_answer(llm, prompt, subtitle).ids)

    threads = [threading.Thread(target=run, args=(s,)) for s in alone]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inside[1] == 1  # never two llama_decode calls on the context at once
    assert all(answers == [alone[s]] * 3 for s, answers in got.items())


def test_sequences_of_one_context_answer_apart(bundle_f32):
    llm = LLM(bundle_f32 / "llm-f32.gguf", flash_attn=False, kv_f32=True, n_seq=2)
    prompt = read_manifest(bundle_f32, verify_hashes=False).prompt
    alone = [_answer(llm, prompt, s).ids for s in SUBTITLES[:2]]
    llm.reset()
    pieces = [prompt_pieces(llm, prompt, _fused(llm), s, FREE.question) for s in SUBTITLES[:2]]
    both = [generate(llm, p, FREE.max_new_tokens, prompt.eos_id, prompt.stop_text, seq_id=i).ids
            for i, p in enumerate(pieces)]
    assert both == alone and llm.n_past(0) > 0 and llm.n_past(1) > 0
    again = generate(llm, pieces[0], FREE.max_new_tokens, prompt.eos_id, prompt.stop_text, seq_id=0).ids
    assert again == alone[0]  # sequence 1's cells did not disturb sequence 0's kept prefix
    llm.close()


@pytest.mark.parametrize("amx", [True, False])
def test_an_amx_build_reads_the_weights_instead_of_mapping_them(monkeypatch, bundle_f32, amx):
    """Its repacked copy is what runs; a mapping beside it would hold the file twice. The answer does not change."""
    import runtime.llm as llm_module

    monkeypatch.setattr(llm_module, "amx_build", lambda: amx)
    params = llm_module.model_params()
    assert (params.load_mode == llama_cpp.LLAMA_LOAD_MODE_NONE) == amx
    assert params.load_mode == (llama_cpp.LLAMA_LOAD_MODE_NONE if amx else
                                llama_cpp.llama_model_default_params().load_mode)
    llm = LLM(bundle_f32 / "llm-f32.gguf", flash_attn=False, kv_f32=True)
    try:
        logits = llm.eval_chunks([llm.tokenize(SUBTITLES[0])])[0]
    finally:
        llm.close()
    monkeypatch.undo()
    reference = LLM(bundle_f32 / "llm-f32.gguf", flash_attn=False, kv_f32=True)  # loaded as the build decides
    try:
        assert np.array_equal(logits, reference.eval_chunks([reference.tokenize(SUBTITLES[0])])[0])
    finally:
        reference.close()
