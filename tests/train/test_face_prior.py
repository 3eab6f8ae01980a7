"""A real face's reading in place of a drawn one's: what it draws, which samples it touches, and what it refuses."""

import random
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from runtime.expression import FER_CLASSES
from train.config import TrainConfig
from train.data import Sample
from train.examples import Examples
from train.face_prior import REAL_READING, real_reading


def test_each_emotion_reads_as_its_profile_on_most_clips():
    from train.corpus import EMOTIONS

    assert set(REAL_READING) == set(EMOTIONS)  # a new corpus emotion needs its row in the table
    rng = np.random.default_rng(0)
    for emotion, weights in REAL_READING.items():
        top = max(weights, key=weights.get)
        draws = [real_reading(emotion, 8, rng) for _ in range(200)]
        assert all(d.shape == (8, 7) and d.dtype == np.float32 for d in draws)
        assert all(np.allclose(d.sum(1), 1, atol=1e-5) for d in draws)
        hits = np.mean([FER_CLASSES[int(d.mean(0).argmax())] == top for d in draws])
        assert hits > 0.6, (emotion, hits)
        # frames of one clip stay near the clip's reading, not independent draws
        assert np.mean([np.abs(d - d.mean(0)).max() for d in draws]) < 0.15


def _examples(share, silent_share=None, neutral_share=0.0):
    cfg = TrainConfig(data="x", out="y", seed=3)
    return Examples([], model=None, cfg=cfg, feature_dir=None, face_prior=share, silent_face_prior=silent_share,
                    neutral_prior=neutral_share)


def _reading(top: str, p: float = 0.5) -> torch.Tensor:
    """[8, 7] frames that read `top` at p, the rest shared; the first two frames without a face (zeroed)."""
    row = np.full(7, (1 - p) / 6, np.float32)
    row[FER_CLASSES.index(top)] = p
    frames = torch.from_numpy(np.tile(row, (8, 1)))
    frames[:2] = 0
    return frames


def test_a_neutral_reading_of_a_face_no_real_one_reads_neutral_is_misread():
    """Drawn angry, sad and disgusted faces read `neutral`; a real face of those emotions does not. Faces whose real
    reading can be neutral (calm, neutral), other readings, and drawn neutral faces read fear are left alone."""
    from train.face_prior import misread_neutral

    for emotion in ("angry", "sad", "disgusted", "happy", "surprised", "anxious", "excited"):
        assert misread_neutral(emotion, _reading("neutral").numpy().mean(0)), emotion
    for emotion, top in (("calm", "neutral"), ("neutral", "neutral"), ("neutral", "fear"), ("angry", "angry"),
                         ("sad", "fear"), ("absent", "neutral")):
        assert not misread_neutral(emotion, _reading(top).numpy()[2:].mean(0)), (emotion, top)


def test_a_misread_neutral_face_has_a_share_of_its_own():
    misread, right = Sample("m", None, face_emotion="angry"), Sample("r", None, face_emotion="angry")
    neutral_read, angry_read = _reading("neutral"), _reading("angry")

    def replaced(ex, sample, face):
        outs = [ex.real_face(sample, face, random.Random(k)) for k in range(400)]
        return np.mean([not torch.equal(o, face) for o in outs]), outs

    ex = _examples(0.2, neutral_share=1.0)
    share, outs = replaced(ex, misread, neutral_read)
    assert share == 1 and np.mean([FER_CLASSES[int(o.mean(0).argmax())] == "angry" for o in outs]) > 0.9
    assert 0.12 < replaced(ex, right, angry_read)[0] < 0.28  # read right: the common share
    assert 0.12 < replaced(_examples(0.2), misread, neutral_read)[0] < 0.28  # no share of its own: the common one


def test_a_share_of_the_samples_gets_a_real_reading_repeatably():
    drawn = torch.full((8, 7), 1 / 7)
    sample = Sample("clip", None, face_emotion="happy")
    ex = _examples(0.5)
    out = [ex.real_face(sample, drawn, random.Random(f"3:0:{k}")) for k in range(400)]
    replaced = [o for o in out if not torch.equal(o, drawn)]
    assert 0.4 < len(replaced) / len(out) < 0.6
    assert np.mean([FER_CLASSES[int(o.mean(0).argmax())] == "happy" for o in replaced]) > 0.9
    again = [ex.real_face(sample, drawn, random.Random(f"3:0:{k}")) for k in range(400)]
    assert all(torch.equal(a, b) for a, b in zip(out, again))  # the same draw after a resume


def test_untouched_without_a_share_a_known_emotion_or_a_seen_face():
    drawn = torch.full((8, 7), 1 / 7)
    rng = lambda: random.Random(0)  # noqa: E731
    assert torch.equal(_examples(0.0).real_face(Sample("a", None, face_emotion="happy"), drawn, rng()), drawn)
    every = _examples(1.0)
    assert not torch.equal(every.real_face(Sample("a", None, face_emotion="happy"), drawn, rng()), drawn)
    assert torch.equal(every.real_face(Sample("a", None, face_emotion="absent"), drawn, rng()), drawn)
    assert torch.equal(every.real_face(Sample("a", None), drawn, rng()), drawn)
    unseen = torch.zeros(8, 7)  # the device took vision away: it stays away
    assert torch.equal(every.real_face(Sample("a", None, face_emotion="sad"), unseen, rng()), unseen)


def test_a_silent_person_has_a_share_of_its_own():
    """Who says nothing is read by the face alone, as a still, silent driver is: its share is set apart."""
    drawn = torch.full((8, 7), 1 / 7)
    silent, talking = Sample("s", None, face_emotion="neutral", silent=True), Sample("t", None, face_emotion="neutral")

    def replaced(ex, sample):
        return np.mean([not torch.equal(ex.real_face(sample, drawn, random.Random(k)), drawn) for k in range(400)])

    ex = _examples(0.2, 0.8)
    assert 0.72 < replaced(ex, silent) < 0.88 and 0.12 < replaced(ex, talking) < 0.28
    assert replaced(_examples(0.0, 1.0), talking) == 0 and replaced(_examples(0.0, 1.0), silent) == 1
    assert 0.12 < replaced(_examples(0.2), silent) < 0.28  # no share of its own: the common one


def test_the_manifest_says_who_is_silent(tmp_path):
    import json

    from train.data import read_dataset

    rows = [{"name": "a", "path": "a.mp4", "face_emotion": "calm", "silent": True}, {"name": "b", "path": "b.mp4"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert [s.silent for s in read_dataset(str(tmp_path / "m.jsonl"))] == [True, False]


@pytest.mark.parametrize("change, message", [
    (dict(features=None), "give --features"),
    (dict(face_prior=1.5), "must be in [0, 1]"),
    (dict(silent_face_prior=-0.1), "--silent-face-prior must be in [0, 1]"),
    (dict(neutral_prior=2.0), "--neutral-prior must be in [0, 1]"),
    (dict(vision_output="features"), "expression probabilities"),
    (dict(face_emotion=None), "face_emotion"),
])
def test_refused_where_it_cannot_mean_anything(change, message):
    from train.errors import TrainingError
    from train.loop import check_face_prior

    cfg = TrainConfig(data="x", out="y", features=change.get("features", "feats"),
                      face_prior=change.get("face_prior", 0.5), silent_face_prior=change.get("silent_face_prior"),
                      neutral_prior=change.get("neutral_prior", 0.0))
    model = SimpleNamespace(cfg=SimpleNamespace(vision_kind="fer", vision_output=change.get("vision_output",
                                                                                            "probabilities")))
    samples = [Sample("a", None, face_emotion=change.get("face_emotion", "happy"))]
    with pytest.raises(TrainingError, match=re.escape(message)):
        check_face_prior(cfg, model, samples)
