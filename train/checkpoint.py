"""Checkpoints: the trainable parameters (LoRA + fusion) as safetensors, the config and the tokenizer.

Frozen parts are not stored: the config says how to rebuild them (seeded random for tiny presets, local
folders for the 7B preset). Every folder is written beside its target and renamed into place, so a crash
never leaves a half-written checkpoint or bundle behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from runtime.atomic import atomic_dir
from train.config import ModelConfig
from train.errors import TrainError
from train.model import AffectGPT, build_parts
from train.tokenizer import load_tokenizer

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "trainable.safetensors"
TOKENIZER_FILE = "tokenizer.json"


def trainable_state(model: AffectGPT) -> dict[str, torch.Tensor]:
    return {k: p.detach().cpu().contiguous() for k, p in model.named_parameters() if p.requires_grad}


def save_checkpoint_to(model: AffectGPT, folder: Path) -> None:
    """Write the checkpoint files into an existing (fresh) folder."""
    from safetensors.torch import save_file

    save_file(trainable_state(model), str(folder / WEIGHTS_FILE))
    (folder / CONFIG_FILE).write_text(model.cfg.to_json())
    model.tokenizer.save(str(folder / TOKENIZER_FILE))


def save_checkpoint(model: AffectGPT, path: str | os.PathLike) -> None:
    with atomic_dir(path) as tmp:
        save_checkpoint_to(model, tmp)


class CheckpointError(TrainError):
    pass


def load_checkpoint(path: str | os.PathLike) -> AffectGPT:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    for name in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE):
        if not (path / name).is_file():
            raise CheckpointError(f"{path} is not a checkpoint: {name} is missing")
    try:
        cfg = ModelConfig.from_dict(json.loads((path / CONFIG_FILE).read_text()))
        weights = load_file(str(path / WEIGHTS_FILE))
    except (json.JSONDecodeError, TypeError, SafetensorError) as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from None
    vision, audio, llm, _ = build_parts(cfg)
    model = AffectGPT(cfg, vision, audio, llm, load_tokenizer(str(path / TOKENIZER_FILE)))
    expected = set(trainable_state(model))
    if set(weights) != expected:
        missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
        raise CheckpointError(f"checkpoint {path} does not fit its config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.load_state_dict(weights, strict=False)
    return model
