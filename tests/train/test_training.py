"""The training engine on a generated corpus: loss, feature cache, exact resume, NaN, bad media, DDP, import."""

import json
import shutil

import pytest
import torch

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from train.corpus import write_corpus

    return write_corpus(tmp_path_factory.mktemp("corpus"), n=16, seed=2, progress=False)


@pytest.fixture(scope="module")
def features(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("features")
    result = run_cli("train.cache", "--preset", "tiny", "--data", str(corpus / "manifest.jsonl"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["skipped"] == 0
    return out


def _train(**kw):
    from train.loop import TrainConfig, train

    base = dict(batch_size=4, lr=2e-3, warmup_steps=2, warmup_lr=1e-4, val_fraction=0.25, progress=False,
                label_type="ovlabel")
    return train(TrainConfig(**{**base, **kw}))


def test_validation_loss_goes_down_on_features(corpus, features, tmp_path):
    result = _train(data=str(corpus / "manifest.jsonl"), out=str(tmp_path / "run"), features=str(features), epochs=4)
    val = [v["loss"] for v in result["val"]]
    assert len(val) == 4 and val[-1] < val[0] - 0.3, val
    assert (tmp_path / "run" / "checkpoint" / "trainable.safetensors").is_file()


def test_cached_features_give_the_loss_of_media(corpus, features, tmp_path):
    media = _train(data=str(corpus / "manifest.jsonl"), out=str(tmp_path / "a"), max_steps=2)
    cached = _train(data=str(corpus / "manifest.jsonl"), out=str(tmp_path / "b"), max_steps=2, features=str(features))
    # on CUDA, cuDNN runs the audio front end's convolutions in TF32: equal to 3e-5 relative there (H200)
    tolerance = dict(rel=1e-4) if torch.cuda.is_available() else dict(abs=1e-4)
    for a, b in zip(media["history"], cached["history"]):
        assert a["loss"] == pytest.approx(b["loss"], **tolerance)


def test_resume_reproduces_the_uninterrupted_loss_curve(corpus, features, tmp_path):
    data, feats = str(corpus / "manifest.jsonl"), str(features)
    straight = _train(data=data, out=str(tmp_path / "straight"), features=feats, epochs=2, label_type="hybrid")
    _train(data=data, out=str(tmp_path / "cut"), features=feats, epochs=2, label_type="hybrid", max_steps=4)
    resumed = _train(data=data, out=str(tmp_path / "cut"), features=feats, epochs=2, label_type="hybrid", resume=True)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in straight["history"]]
    assert [v["loss"] for v in resumed["val"]] == [v["loss"] for v in straight["val"]]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(corpus, features, tmp_path):
    from train.checkpoint import load_checkpoint
    from train.loop import TrainingError

    with pytest.raises(TrainingError, match="loss is nan"):
        _train(data=str(corpus / "manifest.jsonl"), out=str(tmp_path / "nan"), features=str(features), epochs=3,
               lr=1e30, warmup_steps=0, save_every=1)
    model = load_checkpoint(tmp_path / "nan" / "checkpoint")  # still a complete, loadable checkpoint
    assert all(torch.isfinite(p).all() for p in model.fusion.parameters())


def test_missing_and_corrupt_media_are_skipped_and_counted(corpus, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(corpus, data)
    (data / "s2_00001.mp4").unlink()
    (data / "s2_00002.mp4").write_bytes(b"not a video")
    result = run_cli("train", "--data", str(data / "manifest.jsonl"), "--out", str(tmp_path / "run"), "--epochs", "1",
                     "--val-fraction", "0", "--batch-size", "8", "--no-progress", "--label-type", "ovlabel")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["skipped"] == 2


def test_two_gloo_processes_agree_and_learn(corpus, features, tmp_path):
    # on the CPU even where a GPU is present: two NCCL ranks cannot share one GPU
    result = run_cli("torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533", "-m", "train",
                     "--data", str(corpus / "manifest.jsonl"), "--features", str(features), "--out", str(tmp_path / "ddp"),
                     "--epochs", "4", "--batch-size", "2", "--lr", "2e-3", "--warmup-steps", "2", "--label-type", "ovlabel",
                     "--val-fraction", "0.25", "--no-progress", timeout=600, env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["ranks_identical"] is True
    val = [v["loss"] for v in metrics["val"]]
    assert val[-1] < val[0], val


def test_import_of_the_released_checkpoint_layout(tmp_path, clip_path):
    from tests.conftest import save_tiny_parts
    from train.checkpoint import trainable_state
    from train.config import affectgpt_7b
    from train.model import AffectGPT

    _, *folders = save_tiny_parts(tmp_path, seed=3)
    cfg = affectgpt_7b(*folders)
    cfg.lora_r = 4
    source = AffectGPT.build(cfg)
    with torch.no_grad():
        for p in source.parameters():
            if p.requires_grad:
                p.normal_(0, 0.02)
    official = {}
    for key, value in trainable_state(source).items():  # our names → the release's names
        key = key.replace("fusion.", "", 1) if key.startswith("fusion.") else key.replace("llm.", "llama_model.", 1)
        official[key] = value
    official["image_llama_proj.weight"] = torch.zeros(256, 48)
    official["llama_proj_extra.weight"] = torch.zeros(2, 2)
    torch.save({"model": official, "optimizer": {}}, tmp_path / "release.pth")

    result = run_cli("train.import_affectgpt", str(tmp_path / "release.pth"), "--clip", str(tmp_path / "clip"),
                     "--hubert", str(tmp_path / "hubert"), "--llm", str(tmp_path / "qwen"), "--out", str(tmp_path / "ours"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mapped"] == len(trainable_state(source)) and report["lora_rank"] == 4
    assert report["unmatched"] == ["llama_proj_extra.weight"]
    assert report["known_unused"] == ["image_llama_proj.weight"] and report["missing"] == []

    from train.checkpoint import load_checkpoint

    imported = load_checkpoint(tmp_path / "ours")
    assert torch.equal(imported.fusion.fc_att.weight, source.fusion.fc_att.weight)
    export = run_cli("export", "--checkpoint", str(tmp_path / "ours"), "--out", str(tmp_path / "bundle"))
    assert export.returncode == 0, export.stderr
    answer = run_cli("runtime.stream", "--clip", str(clip_path), "--bundle", str(tmp_path / "bundle"),
                     "--max-new-tokens", "4")
    assert answer.returncode == 0, answer.stderr


@pytest.mark.gpu
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_training_on_cuda_with_amp_and_gradient_checkpointing(corpus, tmp_path, amp):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU; this machine has none")
    from train.checkpoint import load_checkpoint

    result = _train(data=str(corpus / "manifest.jsonl"), out=str(tmp_path / "run"), epochs=4, amp=amp,
                    grad_checkpointing=True)
    val = [v["loss"] for v in result["val"]]
    assert val[-1] < val[0], val
    # a checkpoint written on the GPU loads and runs on a machine without one
    model = load_checkpoint(tmp_path / "run" / "checkpoint")
    assert next(model.parameters()).device.type == "cpu"
    prep = model.cfg.preprocessing
    fused = model.encode(torch.randn(1, prep.num_frames, 3, prep.image_size, prep.image_size),
                         torch.randn(1, prep.num_clips, prep.clip_samples))
    assert torch.isfinite(fused).all()


def test_more_processes_than_gpus_is_refused_with_the_fix(monkeypatch):
    from train.loop import TrainingError, _distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(TrainingError, match="2 processes on this node but 1 GPU"):
        _distributed()


def test_feature_cache_refuses_to_mix_encoders(corpus, features):
    other = run_cli("train.cache", "--preset", "tiny", "--seed", "1", "--data", str(corpus / "manifest.jsonl"),
                    "--out", str(features))
    assert other.returncode == 1 and "features of other encoders" in other.stderr
    assert "Traceback" not in other.stderr


def test_fixed_length_epochs_walk_through_the_data_and_every_epoch_is_kept(corpus, features, tmp_path):
    result = _train(data=str(corpus / "manifest.jsonl"), out=str(tmp_path / "run"), features=str(features), epochs=3,
                    iters_per_epoch=2, batch_size=2)
    assert result["steps"] == 6 and [h["epoch"] for h in result["history"]] == [0, 0, 1, 1, 2, 2]
    kept = sorted(p.name for p in (tmp_path / "run" / "epochs").iterdir())
    assert kept == ["epoch-001", "epoch-002", "epoch-003"]
    from train.checkpoint import load_checkpoint

    first, last = load_checkpoint(tmp_path / "run" / "epochs" / "epoch-001"), load_checkpoint(tmp_path / "run" / "checkpoint")
    assert not torch.equal(first.fusion.fc_att.weight, last.fusion.fc_att.weight)


def test_a_sample_longer_than_max_length_is_replaced(corpus, features, tmp_path):
    from runtime.prompt import OV_QUESTION, STOP_TEXT, ov_answer
    from train.config import tiny
    from train.data import read_jsonl
    from train.model import AffectGPT
    from train.tokenizer import encode_text

    model = AffectGPT.build(tiny(42))
    lengths = sorted(len(model.prompt_ids(s.subtitle, OV_QUESTION)) + len(encode_text(model.tokenizer, ov_answer(s.labels or []) + STOP_TEXT)) + 1
                     for s in read_jsonl(corpus / "manifest.jsonl"))
    # a limit between the shortest and the longest sample: the longer ones are replaced, training goes on
    result = _train(data=str(corpus / "manifest.jsonl"), out=str(tmp_path / "run"), features=str(features), epochs=1,
                    max_length=lengths[len(lengths) // 2])
    assert 0 < result["replaced_too_long"] and result["steps"] > 0


def test_the_paper_preset_trains_only_from_its_local_folders(corpus, tmp_path):
    result = run_cli("train", "--preset", "affectgpt-7b", "--data", str(corpus / "manifest.jsonl"), "--out", str(tmp_path / "r"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "--vision-path" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_release_layout_is_read(corpus, tmp_path):
    """MER-Caption(+) keeps audio in audio/<name>.wav and OpenFace crops in openface_face/<name>/<name>.npy."""
    import numpy as np

    from runtime.manifest import Preprocessing
    from train.data import DataError, check_face_crops, read_dataset

    rows = [json.loads(x) for x in (corpus / "manifest.jsonl").read_text().splitlines()][:4]
    release = tmp_path / "MER"
    (release / "video").mkdir(parents=True)
    (release / "audio").mkdir()
    for r in rows:
        shutil.copy(corpus / r["path"], release / "video" / r["path"])
    (release / "track2.csv").write_text("name,openset\n" + "".join(f'{r["name"]},"[{", ".join(r["labels"])}]"\n' for r in rows))
    spec = f"{release / 'video'}:{release / 'track2.csv'}"
    face_model = Preprocessing(image_size=64, face_crop=True)
    with pytest.raises(DataError, match="openface_face"):
        check_face_crops(read_dataset(spec), face_model)
    for r in rows[:3]:
        (release / "openface_face" / r["name"]).mkdir(parents=True)
        np.save(release / "openface_face" / r["name"] / f'{r["name"]}.npy', np.zeros((5, 32, 32, 3), np.uint8))
        shutil.copy(corpus / r["path"], release / "audio" / f'{r["name"]}.wav')  # any file: only its place matters here
    samples = read_dataset(spec)
    assert [s.faces is not None for s in samples] == [True, True, True, False]
    assert [s.wav is not None for s in samples] == [True, True, True, False]
    notes = []
    report = check_face_crops(samples, face_model, log=notes.append)
    assert report == {"samples": 4, "media": 4, "audio_wav": 3, "face_crops": 3}
    assert notes and notes[0].startswith("1 of 4 samples have no OpenFace face crops")
    frame_model = Preprocessing(image_size=64)
    assert check_face_crops(read_dataset(spec), frame_model)["face_crops"] == 3  # crops are not needed there
    # a model that learnt faces from the runtime's detector (the default) has them cropped by it, as in its training
    for r in rows:
        shutil.rmtree(release / "openface_face" / r["name"], ignore_errors=True)
    assert check_face_crops(read_dataset(spec), face_model, openface=False)["face_crops"] == 0


@pytest.mark.parametrize("n", [13, 14])
def test_every_rank_gets_as_many_batches_when_the_samples_do_not_divide(n):
    # an odd sample count once left one rank a batch short, and DDP waited for it forever
    from train.config import TrainConfig
    from train.examples import epoch_batches

    cfg = TrainConfig(data="x.jsonl", out="run", batch_size=2)
    ranks = [epoch_batches(n, 0, cfg, rank, 2) for rank in range(2)]
    assert len(ranks[0]) == len(ranks[1])
    assert set(i for r in ranks for b in r for i in b) == set(range(n))
