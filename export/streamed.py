"""Bundles whose LLM is never in memory: the paper's shapes with random weights, or a trained checkpoint over a local
LLM folder (the 7B preset). The encoders and the fusion are built and checked as export_bundle does; the LLM exists
only on PyTorch's meta device, and its GGUF is written tensor by tensor (export/lazy_llm.py) with the LoRA merged
into each weight as it is made. Each returns (manifest, peak anonymous MB, seconds).
"""

from __future__ import annotations

import time
from pathlib import Path

from export.bundle import export_bundle_streamed
from export.errors import ExportError
from export.lazy_llm import checkpoint_lora, folder_tensors, random_lora, random_tensors
from export.memory import AnonPeak


def export_shapes(shapes: str, out: str | Path, seed: int = 0, name: str | None = None) -> tuple:
    """full_size(shapes) with random weights (a random LoRA merged in, so the merge costs what it will) → a bundle."""
    from train.config import full_size
    from train.model import AffectGPT, build_parts

    start = time.perf_counter()
    with AnonPeak() as peak:
        cfg = full_size(shapes, seed)
        model = AffectGPT(cfg, *build_parts(cfg, llm_on_meta=True))
        config = model.llm.get_base_model().config
        lora = random_lora(config, tuple(cfg.lora_targets), cfg.lora_r, cfg.lora_alpha, seed)
        manifest = export_bundle_streamed(model, random_tensors(config, seed, lora), out, name or f"shapes-{shapes}",
                                          seed, random_weights=True)
    return manifest, peak.mb, time.perf_counter() - start


def export_checkpoint(checkpoint: str | Path, out: str | Path, name: str | None = None) -> tuple:
    """A checkpoint whose LLM comes from a local folder (llm_path) → a bundle, reading the folder one tensor at a
    time and merging the checkpoint's LoRA into each."""
    import json

    from safetensors.torch import load_file

    from train.checkpoint import CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE
    from train.config import ModelConfig
    from train.model import AffectGPT, build_parts
    from train.tokenizer import load_tokenizer

    checkpoint = Path(checkpoint)
    start = time.perf_counter()
    with AnonPeak() as peak:
        cfg = ModelConfig.from_dict(json.loads((checkpoint / CONFIG_FILE).read_text()))
        if not cfg.llm_path or cfg.train_llm:
            raise ExportError("--stream reads the LLM from its local folder: this checkpoint has none (llm_path), or "
                              "trains the whole LLM; export it without --stream")
        vision, audio, llm, _ = build_parts(cfg, llm_on_meta=True)
        model = AffectGPT(cfg, vision, audio, llm, load_tokenizer(str(checkpoint / TOKENIZER_FILE)))
        weights = load_file(str(checkpoint / WEIGHTS_FILE))
        fusion = {k: v for k, v in weights.items() if k.startswith("fusion.")}
        expected = {k for k, p in model.named_parameters() if k.startswith("fusion.")}
        if set(fusion) != expected:
            raise ExportError(f"checkpoint {checkpoint} does not fit its config: fusion weights "
                              f"{sorted(expected ^ set(fusion))[:3]}")
        model.load_state_dict(fusion, strict=False)
        config = model.llm.get_base_model().config
        tensors = folder_tensors(cfg.llm_path, config, checkpoint_lora(weights, cfg.lora_alpha))
        manifest = export_bundle_streamed(model, tensors, out, name)
    return manifest, peak.mb, time.perf_counter() - start
