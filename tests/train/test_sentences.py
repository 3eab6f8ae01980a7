"""The corpus's subtitles: many sentences from templates, split by template, their words agreeing with the label."""

from __future__ import annotations

import random

from train import sentences
from train.corpus import EMOTIONS, plan


def test_every_emotion_has_templates_in_every_split():
    for emotion in EMOTIONS:
        for split in sentences.SPLITS:
            assert sentences.templates(emotion, split), (emotion, split)


def test_test_sentences_come_from_templates_training_never_saw():
    train = {t for e in EMOTIONS for t in sentences.templates(e, "train")}
    test = {t for e in EMOTIONS for t in sentences.templates(e, "test")}
    assert not train & test
    rng = random.Random(0)
    drawn = {sentences.sentence("sad", "train", rng) for _ in range(300)}
    assert len(drawn) > 150  # slots make many sentences, not a fixed list


def test_a_corpus_holds_many_distinct_subtitles_and_words_alone_often_carry_the_emotion():
    rows, _ = plan(800, 3)
    assert len({r["subtitle"] for r in rows}) > 450
    revealing = [r for r in rows if r["text_kind"] == "revealing"]
    assert len(revealing) > 0.2 * len(rows)
    assert all(r["face_emotion"] == r["voice_emotion"] == "neutral" != r["emotion"] for r in revealing)


def test_held_out_subtitles_are_not_training_subtitles():
    rows, _ = plan(1200, 5)
    train = {r["subtitle"] for r in rows if r["split"] == "train"}
    for split in ("val", "test"):
        held = [r for r in rows if r["split"] == split and r["text_kind"] != "contradicting"]
        shared = [r["subtitle"] for r in held if r["subtitle"] in train]
        assert len(shared) <= 0.02 * len(held), shared[:5]  # an opener-less template without slots may repeat
