"""Shared fixtures: a tiny model with non-trivial trainable weights, its checkpoint, bundles and real clips."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WHEEL_DIR = ROOT / "benchmarks" / "data" / "emotion-wheel"  # the official tables, shipped in the package


def run_cli(*args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m ...` as a user would, from the project root (`env`: variables added to ours)."""
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env} if env else None)


def save_tiny_parts(folder: Path, seed: int):
    """Tiny CLIP, HuBERT and Qwen2 (+ tokenizer) saved as local pretrained folders, as the 7B preset reads
    them. → (parts, clip_dir, hubert_dir, llm_dir)"""
    from train.model import build_parts
    from train.config import tiny

    vision, audio, llm, tokenizer = parts = build_parts(tiny(seed=seed))
    vision.clip.save_pretrained(folder / "clip")
    audio.hubert.save_pretrained(folder / "hubert")
    llm.save_pretrained(folder / "qwen")
    tokenizer.save(str(folder / "qwen" / "tokenizer.json"))
    return parts, str(folder / "clip"), str(folder / "hubert"), str(folder / "qwen")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip_path(media_dir) -> Path:
    from train.synth import write_clip

    return write_clip(media_dir / "talking.mp4", seconds=5.0, seed=3)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny model whose LoRA and fusion weights are perturbed (so merging matters), saved as a checkpoint."""
    import torch

    from train.checkpoint import save_checkpoint
    from train.config import tiny
    from train.model import AffectGPT

    model = AffectGPT.build(tiny(seed=1))
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(model, path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint):
    from train.checkpoint import load_checkpoint

    return load_checkpoint(tiny_checkpoint).eval()


def _export(model, out: Path, llm_type: str) -> Path:
    from export.bundle import export_bundle

    export_bundle(model, out, llm_type)
    return out


@pytest.fixture(scope="session")
def bundle_f32(tiny_model, tmp_path_factory) -> Path:
    return _export(tiny_model, tmp_path_factory.mktemp("bundles") / "tiny-f32", "f32")


@pytest.fixture(scope="session")
def bundle_f16(tiny_model, tmp_path_factory) -> Path:
    return _export(tiny_model, tmp_path_factory.mktemp("bundles") / "tiny-f16", "f16")


@pytest.fixture
def bundle_copy(bundle_f16, tmp_path) -> Path:
    """A private copy of the F16 bundle that a test may damage."""
    out = tmp_path / "bundle"
    shutil.copytree(bundle_f16, out)
    return out
