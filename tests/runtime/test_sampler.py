"""Decoding: the greedy choice within a grammar, and the opening a grammar fixes fed without its logits instead of
chosen — the same tokens out, token for token, on the tiny model and on the shipped default."""

import json

import numpy as np
import pytest

from runtime.answer import answer, opening_ids, prompt_pieces
from runtime.llm import LLM, LLMError
from runtime.manifest import read_manifest
from runtime.prompt import OV_ANSWER_PREFIX, parse_ov_answer
from runtime.sampler import Sampler, generate
from runtime.task import TASKS
from tests.conftest import ROOT

LABELS = TASKS["labels"]
DEMO = ROOT / "runtime" / "demo"


@pytest.fixture(scope="module")
def tiny(bundle_f32):
    llm = LLM(bundle_f32 / "llm-f32.gguf", flash_attn=False, kv_f32=True)
    yield llm, read_manifest(bundle_f32, verify_hashes=False).prompt
    llm.close()


def _pieces(llm, prompt, subtitle, task, seed=0):
    fused = np.random.default_rng(seed).standard_normal((3, llm.n_embd)).astype(np.float32) * 0.05
    return prompt_pieces(llm, prompt, fused, subtitle, task.question)


def test_the_choice_is_the_best_token_the_grammar_allows(tiny):
    llm, _ = tiny
    sampler = Sampler(llm.vocab, LABELS.grammar)
    logits = np.random.default_rng(1).standard_normal(llm.n_vocab).astype(np.float32)
    for token in llm.tokenize(OV_ANSWER_PREFIX + "calm"):
        allowed = [t for t in range(llm.n_vocab) if sampler.allows(t)]
        assert 0 < len(allowed) < llm.n_vocab
        assert sampler.choose(logits) == max(allowed, key=lambda t: logits[t])
        top = allowed[len(allowed) // 2]
        boosted = logits.copy()
        boosted[top] = 100.0
        assert sampler.choose(boosted) == top  # an allowed argmax is taken as it is
        sampler.accept(token)
    sampler.reset()
    assert sampler.allows(llm.tokenize("The")[0]) and not sampler.allows(llm.tokenize("calm")[0])
    sampler.close()


def test_a_grammar_answer_follows_the_grammar(tiny):
    llm, prompt = tiny
    gen = generate(llm, _pieces(llm, prompt, "Fine.", LABELS), 40, prompt.eos_id, prompt.stop_text, LABELS.grammar)
    assert parse_ov_answer(gen.text) and gen.text.startswith(OV_ANSWER_PREFIX)
    either = 'root ::= "yes" | "no"\n'
    assert generate(llm, _pieces(llm, prompt, "Fine.", LABELS), 8, prompt.eos_id, grammar=either).text in ("yes", "no")
    with pytest.raises(LLMError, match="grammar"):
        Sampler(llm.vocab, "root ::= oops")


@pytest.mark.parametrize("task", [LABELS, LABELS.unconstrained()], ids=["grammar", "free"])
def test_forced_ids_give_the_answer_decoding_them_gives(tiny, task, monkeypatch):
    llm, prompt = tiny
    for seed, subtitle in enumerate(("I can't believe you did that again.", "Fine.", "We won the final!")):
        pieces = _pieces(llm, prompt, subtitle, task, seed)
        greedy = generate(llm, pieces, 24, prompt.eos_id, prompt.stop_text, task.grammar)
        assert len(greedy.ids) > 5
        for n in (1, 5, len(greedy.ids)):
            got = generate(llm, pieces, 24, prompt.eos_id, prompt.stop_text, task.grammar, forced=greedy.ids[:n])
            assert got.ids == greedy.ids and got.text == greedy.text and got.forced_tokens == n
            assert got.prompt_tokens == greedy.prompt_tokens
        short = generate(llm, pieces, 2, prompt.eos_id, prompt.stop_text, task.grammar, forced=greedy.ids)
        assert short.ids == greedy.ids[:2]  # the budget stops the answer inside the forced ids
    outputs = []  # forced tokens need no logits: the output layer runs only where a choice is made
    real = llm.eval_chunks
    monkeypatch.setattr(llm, "eval_chunks", lambda *a, **k: outputs.append(k.get("n_logits", 1)) or real(*a, **k))
    generate(llm, pieces, 24, prompt.eos_id, prompt.stop_text, task.grammar, forced=greedy.ids[:5])
    assert outputs[:5] == [0, 0, 0, 0, 1]


def test_forced_ids_start_the_answer_and_must_fit_the_grammar(tiny):
    llm, prompt = tiny
    pieces = _pieces(llm, prompt, "Fine.", LABELS)
    start = llm.tokenize("The character")
    got = generate(llm, pieces, 12, prompt.eos_id, prompt.stop_text, forced=start)
    assert got.ids[:len(start)] == start and got.forced_tokens == len(start)
    with pytest.raises(LLMError, match="does not allow"):
        generate(llm, pieces, 12, prompt.eos_id, grammar=LABELS.grammar, forced=llm.tokenize("calm"))
    assert opening_ids(llm, LABELS.opening) and llm.detokenize(opening_ids(llm, LABELS.opening)) == OV_ANSWER_PREFIX[:-1]
    assert opening_ids(llm, LABELS.unconstrained().opening) == []  # free decoding fixes nothing


def _default_pipeline():
    if not (DEMO / "samples" / "samples.jsonl").is_file():
        pytest.skip("no shipped default in runtime/demo")
    from runtime.base_models import BaseModelError
    from runtime.manifest import BundleError
    from runtime.pipeline import Pipeline, RuntimeOptions

    try:
        return Pipeline(DEMO / "bundle", RuntimeOptions(verify_hashes=False))
    except (BaseModelError, BundleError) as err:
        pytest.skip(f"the default's base model is not installed: {err}")


def test_the_default_answers_as_before_without_choosing_its_opening():
    """The shipped default: the opening its grammar fixes fed without logits, against plain greedy decoding, for
    several clips and subtitles; answer() does the same once its first answer has opened with those ids."""
    from runtime.media import read_clip_for

    pipeline = _default_pipeline()
    llm, prompt = pipeline.llm, pipeline.manifest.prompt
    opening = opening_ids(llm, LABELS.opening)
    assert len(opening) == 7  # "The character's emotional state is": 7 of the 9 tokens of a one-label answer
    samples = [json.loads(line) for line in (DEMO / "samples" / "samples.jsonl").read_text().splitlines()]
    subtitles = ("I can't believe you did that again.", "The weather is grey today.")
    for sample in samples[3:6]:  # excited and happy among them: near-ties one batch of the opening would flip
        fused = pipeline.features(read_clip_for(DEMO / "samples" / sample["file"], pipeline.manifest.preprocessing)).fused
        for subtitle in (sample["subtitle"],) + subtitles:
            pieces = prompt_pieces(llm, prompt, fused, subtitle, LABELS.question)
            greedy = generate(llm, pieces, LABELS.max_new_tokens, prompt.eos_id, prompt.stop_text, LABELS.grammar)
            forced = generate(llm, pieces, LABELS.max_new_tokens, prompt.eos_id, prompt.stop_text, LABELS.grammar,
                              forced=opening)
            assert forced.ids == greedy.ids and forced.forced_tokens == 7, (sample["file"], subtitle)
            assert answer(llm, prompt, fused, subtitle, LABELS).token_ids == greedy.ids
    pipeline.close()
