"""The affectgpt-7b preset loads each part from a local folder; checked here with tiny parts saved to disk."""

import torch

from tests.conftest import save_tiny_parts
from train.config import affectgpt_7b
from train.model import AffectGPT


def test_pretrained_parts_load_from_local_folders(tmp_path):
    (vision, audio, llm, tokenizer), *folders = save_tiny_parts(tmp_path, seed=5)
    local = affectgpt_7b(*folders)
    assert local.preprocessing.channel_order == "bgr" and local.preprocessing.image_size == 224
    model = AffectGPT.build(local).eval()
    for name, p in vision.clip.state_dict().items():
        assert torch.equal(model.vision.clip.state_dict()[name], p), name
    assert torch.equal(model.llm.get_input_embeddings().weight, llm.get_input_embeddings().weight)
    assert model.tokenizer.get_vocab() == tokenizer.get_vocab()
    assert model.bos_id == tokenizer.token_to_id("<|im_start|>")


def test_every_training_option_is_a_field_of_the_config():
    import dataclasses

    from train.__main__ import parser
    from train.config import TrainConfig

    assert TrainConfig(**vars(parser().parse_args(["--data", "d", "--out", "o"]))) == TrainConfig(data="d", out="o")
    changed = dict(preset="tiny-frame", init_checkpoint="c", vision_path="v", audio_path="a", llm_path="l", seed=1,
                   val_data="vd", val_fraction=0.2, features="f", face_prior=0.5, silent_face_prior=0.9, neutral_prior=0.7, label_type="ovlabel", epochs=2, batch_size=4,
                   grad_accum=2, lr=1e-3, warmup_lr=1e-4, warmup_steps=3, weight_decay=0.1, amp="off",
                   grad_checkpointing=True, save_every=5, max_steps=6, iters_per_epoch=7, epoch_checkpoints=0,
                   max_length=512, resume=True, progress=False)
    argv = ["--data", "d", "--out", "o"]
    for name, value in changed.items():
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else ["--no-progress"] if value is False else [flag, str(value)]
    assert {f.name for f in dataclasses.fields(TrainConfig)} == {"data", "out", *changed}
    assert TrainConfig(**vars(parser().parse_args(argv))) == TrainConfig(data="d", out="o", **changed)


def test_one_presets_table_drives_every_command(capsys):
    import pytest

    from benchmarks.recipe import main as recipe
    from export.__main__ import main as export
    from train.cache import main as cache
    from train.config import CORPUS, FOLDERS, PRESETS, SEEDED, TrainConfig, preset_names
    from train.pretrain import main as pretrain

    for command, weights in ((export, (SEEDED, FOLDERS)), (cache, (SEEDED,)), (pretrain, (CORPUS,)), (recipe, (CORPUS,))):
        with pytest.raises(SystemExit):
            command(["--help"])
        assert "{" + ",".join(preset_names(*weights)) + "}" in capsys.readouterr().out
    assert set(preset_names(SEEDED, FOLDERS, CORPUS)) == set(PRESETS)
    for p in PRESETS.values():  # a recipe's training options are options of python -m train
        assert p.recipe is None or set(p.recipe.train) <= set(TrainConfig.__dataclass_fields__)


def test_the_renamed_preset_still_answers_to_its_old_name(capsys):
    from train.config import model_config, scratch

    assert model_config("demo", seed=3) == scratch(3)
    assert "renamed 'scratch'" in capsys.readouterr().err


def test_the_paper_preset_needs_its_folders():
    import pytest

    from train.config import PresetError, model_config

    with pytest.raises(PresetError, match="--vision-path"):
        model_config("affectgpt-7b", vision_path="v")
    assert model_config("affectgpt-7b", vision_path="v", audio_path="a", llm_path="l").llm_path == "l"
