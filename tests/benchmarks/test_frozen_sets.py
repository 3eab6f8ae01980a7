"""What the model is judged on stays apart from what it learns from: no probe sentence can be drawn by the corpus's
sentence generator, the danger sentences are their own set, and the frozen held-out split is the file it claims."""

from __future__ import annotations

import hashlib
import json
import re

from benchmarks.probe import SETS, read_sentences
from tests.conftest import ROOT
from train import corpus, sentences

HELDOUT = ROOT / "benchmarks" / "data" / "heldout" / "test-0126542-seed1-160.jsonl"
HELDOUT_SHA256 = "9289db178fd689e0981a4ebd1df6a857bdb58f38709706668c4b57499da1effe"


def _norm(text: str, strip: bool = True) -> str:
    text = re.sub(r"\s+", " ", text.replace("’", "'").lower())
    return text.strip() if strip else text


def _alternatives(words) -> str:
    return "(?:" + "|".join(re.escape(_norm(w, strip=False)) for w in sorted(set(words), key=len, reverse=True)) + ")"


def corpus_patterns() -> list[re.Pattern]:
    """Every sentence the corpus can write, as regular expressions: each template of each split with its slots'
    words (VADER's included) behind either opener list, and the fixed sarcastic / masking sentences."""
    openers = _alternatives(sentences.OPENERS + corpus.OPENERS)
    out = []
    for emotion, templates in sentences.TEMPLATES.items():
        for template in templates:
            parts = re.split(r"(\{\w+\})", _norm(template))
            body = "".join(_alternatives(sentences.slot_words(p[1:-1])) if p.startswith("{") else re.escape(p)
                           for p in parts)
            out.append(re.compile(openers + body))
    for cores in corpus.CONTRADICTING_CORES.values():
        out += [re.compile(openers + re.escape(_norm(c))) for c in cores]
    return out


def all_probe_sentences() -> list[dict]:
    return [row for path in SETS.values() for row in read_sentences(path)]


def test_the_patterns_recognise_what_the_corpus_writes():
    patterns = corpus_patterns()
    rows, _ = corpus.plan(400, 5)
    said = [r for r in rows if r["subtitle"]]  # a silent person's row may have no words at all
    assert len(said) > 0.9 * len(rows) and any("_x" in r["name"] for r in said)
    assert all(any(p.fullmatch(_norm(r["subtitle"])) for p in patterns) for r in said)


def test_no_probe_sentence_can_be_drawn_by_the_corpus():
    patterns = corpus_patterns()
    drawn = [row["id"] for row in all_probe_sentences()
             if any(p.fullmatch(_norm(row["text"])) for p in patterns)]
    assert not drawn, f"probe sentences the corpus can write: {drawn}"


def test_the_danger_set_is_twenty_negative_sentences_apart_from_the_first_set():
    first, danger = read_sentences(SETS["everyday"]), read_sentences(SETS["danger"])
    assert len(first) == 136 and len(danger) == 20
    assert all(r["sentiment"] == "negative" for r in danger)
    assert not {_norm(r["text"]) for r in first} & {_norm(r["text"]) for r in danger}
    assert len({r["id"] for r in first + danger}) == 156


def test_the_frozen_heldout_split_is_the_file_it_claims():
    data = HELDOUT.read_bytes()
    assert hashlib.sha256(data).hexdigest() == HELDOUT_SHA256
    rows = [json.loads(line) for line in data.decode().splitlines()]
    assert len(rows) == 160 and len({r["name"] for r in rows}) == 160
    assert all(r["split"] == "test" for r in rows)
    probe = {_norm(r["text"]) for r in all_probe_sentences()}
    assert not probe & {_norm(r["subtitle"]) for r in rows}



def test_the_recipe_corpus_still_holds_the_frozen_heldout_clips():
    # rows added to the corpus come after the planned ones, so the recipe's test split starts with the same 160 rows
    rows, _ = corpus.plan(3200, 1)
    test = [{k: v for k, v in r.items() if k != "description"} for r in rows if r["split"] == "test"][:160]
    assert test == [json.loads(line) for line in HELDOUT.read_text().splitlines()]
