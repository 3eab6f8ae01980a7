"""Encoder pretraining for the demo: rendered expression frames for vision, corpus clips for audio."""

import numpy as np
import torch

from train.config import tiny
from train.model import AffectGPT


def test_rendered_expressions_are_deterministic_and_labelled():
    from train.corpus import EMOTIONS
    from train.pretrain import EXPRESSION_KEYS, rendered_expressions

    prep = tiny().preprocessing
    x, y, c = rendered_expressions(12, seed=3, prep=prep, workers=1)
    assert x.shape == (12, 3, prep.image_size, prep.image_size) and y.shape == (12, len(EXPRESSION_KEYS))
    assert int(c.min()) >= 0 and int(c.max()) < len(EMOTIONS)
    again = rendered_expressions(12, seed=3, prep=prep, workers=1)
    assert torch.equal(x, again[0]) and torch.equal(c, again[2])
    assert not torch.equal(x, rendered_expressions(12, seed=4, prep=prep, workers=1)[0])


def test_vision_pretraining_changes_then_freezes_the_encoder():
    from train.pretrain import pretrain_vision

    model = AffectGPT.build(tiny(seed=1))
    before = {k: v.clone() for k, v in model.vision.state_dict().items()}
    result = pretrain_vision(model, frames=96, epochs=2, batch_size=16, warmup=2, log=lambda _: None)
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    assert all(np.isfinite(h["val_mse"]) for h in result["history"])
    changed = [k for k, v in model.vision.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "pretraining left the vision encoder as it was"
    assert not model.vision.training and not any(p.requires_grad for p in model.vision.parameters())


def test_a_face_margin_given_to_pretraining_is_the_one_every_later_stage_reads(tmp_path):
    """The recipe's --face-margin goes to train.pretrain, whose init/ checkpoint the feature cache, training and the
    export all read their preprocessing from."""
    import json

    from train.checkpoint import CONFIG_FILE
    from train.config import ModelConfig
    from train.corpus import write_corpus
    from train.pretrain import pretrain_encoders

    corpus = write_corpus(tmp_path / "corpus", n=8, seed=2, progress=False)
    pretrain_encoders(corpus, tmp_path / "out", vision_frames=16, vision_epochs=1, audio_samples=2, audio_epochs=1,
                      log=lambda *a: None, preset="scratch", face_margin=0.1)
    cfg = ModelConfig.from_dict(json.loads((tmp_path / "out" / "init" / CONFIG_FILE).read_text()))
    assert cfg.preprocessing.face_margin == 0.1


def test_audio_pretraining_gives_the_same_encoder_twice(tmp_path):
    """The recipe regenerates a default only if its stages do: HuBERT's time masking draws from numpy's global
    generator, which pretraining seeds (whatever state it finds it in)."""
    import json

    from train.corpus import write_corpus
    from train.data import read_jsonl
    from train.pretrain import pretrain_audio

    corpus = write_corpus(tmp_path / "corpus", n=8, seed=2, progress=False)
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    by_name = {s.name: s for s in read_jsonl(corpus / "manifest.jsonl")}
    rows = [r for r in rows if r["voice_emotion"] != "absent"][:4]
    encoders = []
    for state in (0, 12345):
        np.random.seed(state)  # whatever came before in the process
        model = AffectGPT.build(tiny(seed=1))
        model.audio.hubert.config.mask_time_prob = 0.5  # mask surely, so an unseeded draw would show
        model.audio.hubert.config.mask_time_length = 2
        pretrain_audio(model, rows, [by_name[r["name"]] for r in rows], epochs=1, batch_size=2, seed=1,
                       log=lambda _: None)
        encoders.append(model.audio.state_dict())
    assert all(torch.equal(encoders[0][k], encoders[1][k]) for k in encoders[0])
