"""python -m export: build a bundle from a training checkpoint, or from a preset with random weights.

    python -m export --checkpoint runs/ckpt --out bundles/mine
    python -m export --preset tiny --random-weights --out bundles/tiny          # pipeline and latency tests
    python -m export --shapes affectgpt-7b --out bundles/7b     # the paper's sizes, random weights, LLM never in memory
    python -m export --checkpoint ckpt/affectgpt --stream --out B  # a 7B checkpoint in a few GB of memory
    python -m export --preset affectgpt-7b --random-weights --vision-path CLIP_DIR --audio-path HUBERT_DIR \
        --llm-path QWEN_DIR --out B                 # pretrained encoders and LLM, but an untrained fusion and LoRA

A preset has no trained fusion or LoRA: its answers mean nothing, so it needs --random-weights, and its
manifest records "weights": "random". Trained weights come from --checkpoint (python -m train, or the released
AffectGPT through python -m train.import_affectgpt). `--shapes` builds the paper's sizes with random weights (latency
does not depend on them) and writes the LLM's GGUF tensor by tensor with a random LoRA merged into each weight, so a
7B model exports in a few GB of memory; it prints the export's time and peak memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from runtime.errors import UsageError, run_cli
from train.config import FOLDERS, QWEN25, SEEDED, PresetError, model_config, preset_argument


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", **preset_argument(SEEDED, FOLDERS))
    src.add_argument("--checkpoint", metavar="DIR", help="a checkpoint folder written by train/")
    src.add_argument("--shapes", choices=tuple(QWEN25),
                     help="random weights at the paper's encoder sizes and this LLM's, the LLM written as it goes")
    ap.add_argument("--out", required=True, metavar="DIR", help="bundle folder (a bundle already there is replaced)")
    ap.add_argument("--llm-type", choices=("f16", "f32"), default="f16")
    ap.add_argument("--seed", type=int, default=0, help="weights seed of random presets")
    ap.add_argument("--name", help="the bundle's name in its manifest (default: affectgpt-<preset>)")
    ap.add_argument("--random-weights", action="store_true",
                    help="--preset: export although the fusion and LoRA are untrained (the manifest says so)")
    ap.add_argument("--vision-path", help="affectgpt-7b: local CLIP ViT-L/14 folder")
    ap.add_argument("--audio-path", help="affectgpt-7b: local chinese-hubert-large folder")
    ap.add_argument("--llm-path", help="affectgpt-7b: local Qwen2.5-7B-Instruct folder")
    ap.add_argument("--stream", action="store_true",
                    help="--checkpoint over a local LLM folder (the 7B preset): write the LLM tensor by tensor, the "
                         "LoRA merged into each, never the whole model in memory (its logits are then not compared "
                         "with PyTorch's)")
    args = ap.parse_args(argv)
    if args.stream and not args.checkpoint:
        raise UsageError("--stream applies to --checkpoint (--shapes always streams)")
    if (args.stream or args.shapes) and args.llm_type != "f16":
        raise UsageError("a streamed LLM is written as F16 (quantise it afterwards with python -m quant gguf)")
    config = None
    if args.preset:
        if not args.random_weights:
            raise UsageError(f"--preset {args.preset} has an untrained fusion and LoRA, so its answers mean nothing: "
                             "pass --random-weights to export it anyway, or --checkpoint for trained weights")
        try:
            config = model_config(args.preset, args.seed, args.vision_path, args.audio_path, args.llm_path)
        except PresetError as err:
            raise UsageError(str(err)) from None
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("export").setLevel(logging.INFO)  # our progress; the exporters' own chatter stays quiet

    if args.shapes or args.stream:
        import resource

        from export.streamed import export_checkpoint, export_shapes

        if args.shapes:
            manifest, peak_mb, seconds = export_shapes(args.shapes, args.out, args.seed, args.name)
        else:
            manifest, peak_mb, seconds = export_checkpoint(args.checkpoint, args.out, args.name)
        print(json.dumps({"bundle": args.out, "weights": manifest.weights,
                          "bytes": {role: entry.bytes for role, entry in manifest.files.items()}, "export_s": seconds,
                          "peak_anon_mb": peak_mb, "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          "parity": manifest.parity}))
        return 0
    from export.bundle import export_bundle
    from train.checkpoint import load_checkpoint
    from train.model import AffectGPT

    model = AffectGPT.build(config) if config else load_checkpoint(args.checkpoint)
    manifest = export_bundle(model, args.out, args.llm_type, inplace=True, name=args.name,
                             random_weights=args.preset is not None)
    sizes = {role: entry.bytes for role, entry in manifest.files.items()}
    print(json.dumps({"bundle": args.out, "weights": manifest.weights, "bytes": sizes, "parity": manifest.parity}))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, expected=(OSError, ValueError)))  # a checkpoint folder that cannot be read as one
