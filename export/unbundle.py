"""Bundle → training checkpoint: the trainable weights of a shipped model, read back exactly, to continue training.

    python -m export.unbundle runtime/demo/bundle --out runs/default-ckpt
    python -m train --init-checkpoint runs/default-ckpt/checkpoint --data ... --out runs/mine

A bundle over a base model (the embedded default: a LoRA adapter GGUF on Gemma-3-270M from its package) holds every
weight a checkpoint needs: the LoRA pairs in the adapter GGUF (F32), the fusion in fusion.onnx and the pretrained audio
encoder in audio.onnx (fp32); the vision network is the preset's own file. They are read back bit for bit, then
checked: each graph against the rebuilt module on fresh inputs, the adapter written again tensor for tensor. A bundle
with a merged LLM cannot be split back into base and LoRA, and is refused. Output: OUT/checkpoint (what train and
export read) and OUT/encoders/audio (the audio encoder the checkpoint's config names).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from export.encoders import AUDIO_GRAPH, FUSION_GRAPH, VISION_GRAPH, max_abs_diff
from export.errors import ExportError
from export.gguf_lora import load_lora_gguf, read_lora_gguf, write_lora_gguf
from export.onnx_weights import load_onnx_weights
from runtime.atomic import atomic_dir
from runtime.errors import run_cli
from runtime.manifest import AUDIO, FUSION, LLM, VISION, Manifest, confined, read_manifest
from train.config import FOLDERS, PRESETS, ModelConfig
from train.model import AffectGPT

log = logging.getLogger(__name__)
TOLERANCE = 1e-5  # the same weights in ONNX Runtime and PyTorch: float rounding only


def preset_config(manifest: Manifest) -> ModelConfig:
    """The config of the preset this bundle was exported from: the one over the same base model whose prompt and
    preprocessing are the bundle's."""
    if not manifest.base_model:
        raise ExportError("the bundle carries a whole LLM (LoRA merged into it), which cannot be split back into base "
                          "and adapter: only bundles over a base model (a LoRA adapter GGUF) can be read back")
    reasons = []
    for preset in PRESETS.values():
        if preset.weights == FOLDERS:
            continue
        cfg = preset.build(0)
        if cfg.llm_base != manifest.base_model["key"]:
            continue
        if (cfg.template, cfg.question) != (manifest.prompt.template, manifest.prompt.question):
            reasons.append(f"{preset.name}: another prompt")
        elif cfg.preprocessing != manifest.preprocessing:
            reasons.append(f"{preset.name}: other preprocessing")
        else:
            return cfg
    raise ExportError(f"no preset over base model {manifest.base_model['key']!r} fits the bundle"
                      + (f" ({'; '.join(reasons)})" if reasons else ""))


def _examples(cfg: ModelConfig, model: AffectGPT, seed: int = 0):
    """(vision, audio, fusion) inputs: random frames and clips, the fusion's at the scale of real features."""
    prep = cfg.preprocessing
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(prep.num_frames, 3, prep.image_size, prep.image_size, generator=g)
    clips = torch.randn(prep.num_clips, prep.clip_samples, generator=g)
    with torch.no_grad():
        face = model.vision(torch.cat([frames, frames.flip(0)])).view(2, prep.num_frames, -1)
        audio = model.audio(torch.cat([clips, clips.flip(0)])).view(2, prep.num_clips, -1)
    return (frames,), (clips[:2],), (face, audio)


def _check(module, graph, inputs, path: Path) -> float:
    diff, scale = max_abs_diff(module, path, inputs, graph.inputs)
    if not diff <= TOLERANCE * max(1.0, scale):
        raise ExportError(f"{path.name}: the weights read back give outputs {diff:.3e} away from the bundle's graph")
    return diff


def unbundle(bundle: str | Path, out: str | Path) -> dict:
    """Read the trainable weights of `bundle` into a checkpoint at OUT/checkpoint. → a report of what was read."""
    from train.checkpoint import save_checkpoint_to

    bundle, out = Path(bundle), Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "unbundled.json").is_file():
        raise ExportError(f"{out} exists and was not written by unbundle: refusing to replace it")
    manifest = read_manifest(bundle)  # every file's size and sha256: a bundle is untrusted input
    paths = {role: confined(bundle, manifest.files[role].path, role) for role in (VISION, AUDIO, FUSION, LLM)
             if role in manifest.files}
    if set(paths) != {VISION, AUDIO, FUSION, LLM}:
        raise ExportError(f"the bundle lacks {', '.join(sorted({VISION, AUDIO, FUSION, LLM} - set(paths)))}")
    cfg = preset_config(manifest)
    alpha, pairs = read_lora_gguf(paths[LLM])
    cfg.lora_r = int(next(iter(pairs.values()))[0].shape[0])
    cfg.lora_alpha = int(alpha) if alpha.is_integer() else alpha  # the config's own type where it can be
    log.info("rebuilding preset %s (LoRA rank %d, alpha %g)", cfg.preset, cfg.lora_r, cfg.lora_alpha)
    model = AffectGPT.build(cfg).eval()
    dims = manifest.dims
    if (model.vision.dim, model.audio.dim, model.llm_width) != (dims.vision_dim, dims.audio_dim, dims.llm_width):
        raise ExportError(f"the bundle's widths {dims} are not preset {cfg.preset}'s")
    vision_in, audio_in, fusion_in = _examples(cfg, model)
    report = {"preset": cfg.preset, "lora_rank": cfg.lora_r, "lora_alpha": cfg.lora_alpha}
    # the vision network is not trained: the bundle's must be the preset's own
    report["vision_max_abs_diff"] = _check(model.vision, VISION_GRAPH, vision_in, paths[VISION])
    unused = load_onnx_weights(model.audio, AUDIO_GRAPH, audio_in, paths[AUDIO])
    report["audio_max_abs_diff"] = _check(model.audio, AUDIO_GRAPH, audio_in, paths[AUDIO])
    report["audio_unused_parameters"] = unused
    unused = load_onnx_weights(model.fusion, FUSION_GRAPH, fusion_in, paths[FUSION])
    if unused:
        raise ExportError(f"fusion parameters missing from {paths[FUSION].name}: {unused[:3]}")
    _, _, fusion_in = _examples(cfg, model, seed=1)  # with the audio encoder read back
    report["fusion_max_abs_diff"] = _check(model.fusion, FUSION_GRAPH, fusion_in, paths[FUSION])
    report["lora_pairs"] = load_lora_gguf(model.llm, paths[LLM])
    with tempfile.TemporaryDirectory() as tmp:
        write_lora_gguf(model.llm, Path(tmp) / "again.gguf")
        _, again = read_lora_gguf(Path(tmp) / "again.gguf")
    if any(not (np.array_equal(a, pairs[k][0]) and np.array_equal(b, pairs[k][1])) for k, (a, b) in again.items()):
        raise ExportError(f"{paths[LLM].name}: the LoRA read back is not written again as it was")

    with atomic_dir(out) as tmp:
        audio_dir = out.resolve() / "encoders" / "audio"  # the config names its final place
        model.audio.hubert.save_pretrained(tmp / "encoders" / "audio")
        cfg.audio_path = str(audio_dir)
        (tmp / "checkpoint").mkdir()
        save_checkpoint_to(model, tmp / "checkpoint")
        (tmp / "unbundled.json").write_text(json.dumps({"bundle": manifest.name, **report}, indent=2))
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.unbundle", description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", help="a bundle folder over a base model (runtime/demo/bundle is the default's)")
    ap.add_argument("--out", required=True, metavar="DIR", help="folder for checkpoint/ and encoders/ (replaced)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("export").setLevel(logging.INFO)
    if not Path(args.bundle).is_dir():
        raise ExportError(f"no bundle at {args.bundle}")
    report = unbundle(args.bundle, args.out)
    print(json.dumps({"checkpoint": str(Path(args.out) / "checkpoint"), **report}))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, expected=(OSError, ValueError)))
