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
        held = [r for r in rows if r["split"] == split and r["text_kind"] != "contradicting" and r["subtitle"]]
        shared = [r["subtitle"] for r in held if r["subtitle"] in train]
        assert len(shared) <= 0.02 * len(held), shared[:5]  # an opener-less template without slots may repeat


def test_some_clips_show_nobody_and_their_words_alone_give_the_label():
    from train.corpus import ABSENT, describe

    rows, _ = plan(1600, 4)
    alone = [r for r in rows if r["text_kind"] == "alone"]
    assert 0.06 * len(rows) < len(alone) < 0.14 * len(rows)
    assert all(r["face_emotion"] == r["voice_emotion"] == ABSENT and not r["expression"] for r in alone)
    neutral = [r for r in alone if r["emotion"] == "neutral"]
    assert 0.2 * len(alone) < len(neutral) < 0.5 * len(alone)  # neutral words over an empty room answer neutral
    assert all(not r["labels"] and r["sentiment"] == 0 for r in neutral)
    assert "nobody is in view" in describe(alone[0]) and "nothing is heard" in describe(alone[0])
    # a camera without a microphone gives digital silence, a covered lens a plain picture: both are in the corpus
    assert {r["room"] for r in alone} == {"silence", "noise"} and {r["blank"] for r in alone} == {True, False}


def test_a_clip_with_nobody_is_the_background_and_room_noise(tmp_path):
    import numpy as np

    from runtime.media import read_clip
    from train.corpus import ABSENT, make_identity, render_clip

    ident = make_identity(7, np.random.default_rng(7))
    row = {"name": "empty", "face_emotion": ABSENT, "voice_emotion": ABSENT, "subtitle": "The bus leaves at six.",
           "room": "noise", "room_noise": 0.003, "blank": False}
    render_clip(tmp_path, row, ident, 7)
    clip = read_clip(tmp_path / "empty.mp4", num_frames=4)
    background = np.array(ident.background, np.float32)
    for frame in clip.frames:  # nothing but the background under its light and noise
        assert np.abs(frame.reshape(-1, 3).astype(np.float32).mean(0) - background).max() < 25
        assert frame.astype(np.float32).std(axis=(0, 1)).max() < 25
    assert clip.has_audio and 0 < np.abs(clip.waveform).max() < 0.05  # room noise, no speech
    render_clip(tmp_path, {**row, "name": "blank", "room": "silence", "blank": True}, ident, 7)
    clip = read_clip(tmp_path / "blank.mp4", num_frames=4)
    assert all(np.ptp(frame.astype(np.float32)) < 8 for frame in clip.frames)  # one grey (codec rounding aside)
    assert np.abs(clip.waveform).max() < 1e-4  # digital silence


def test_silent_still_people_are_labelled_by_their_face_and_danger_is_in_the_words():
    from train.corpus import ABSENT, EMOTIONS

    rows, _ = plan(1600, 4)
    silent = [r for r in rows if r.get("silent")]
    assert 0.08 * 1600 < len(silent) < 0.12 * 1600
    assert all(r["voice_emotion"] == ABSENT and r["face_emotion"] != ABSENT for r in silent)
    assert all(r["emotion"] == r["face_emotion"] and set(r["labels"]) <= set(EMOTIONS[r["face_emotion"]][0])
               for r in silent)
    assert {r["face_emotion"] for r in silent} == set(EMOTIONS)  # smiling ones among them: silence is not sadness
    assert sum(not r["subtitle"] for r in silent) > len(silent) / 2
    danger = [r for r in rows if r["name"].split("_")[1].startswith("x") and not r.get("silent")]
    assert danger and all(r["emotion"] == "anxious" and r["sentiment"] == -1 for r in danger)
