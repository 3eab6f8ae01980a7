"""python -m export: build a bundle from a training checkpoint, or from a preset with random weights.

    python -m export --checkpoint runs/ckpt --out bundles/mine
    python -m export --preset tiny --random-weights --out bundles/tiny          # pipeline and latency tests
    python -m export --preset affectgpt-7b --random-weights --vision-path CLIP_DIR --audio-path HUBERT_DIR \
        --llm-path QWEN_DIR --out B                 # pretrained encoders and LLM, but an untrained fusion and LoRA

A preset has no trained fusion or LoRA: its answers mean nothing, so it needs --random-weights, and its
manifest records "weights": "random". Trained weights come from --checkpoint (python -m train, or the released
AffectGPT through python -m train.import_affectgpt).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from export.encoders import ExportError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", choices=("tiny", "tiny-frame", "affectgpt-7b", "affectgpt-7b-frame"))
    src.add_argument("--checkpoint", metavar="DIR", help="a checkpoint folder written by train/")
    ap.add_argument("--out", required=True, metavar="DIR", help="bundle folder (a bundle already there is replaced)")
    ap.add_argument("--llm-type", choices=("f16", "f32"), default="f16")
    ap.add_argument("--seed", type=int, default=0, help="weights seed of random presets")
    ap.add_argument("--name", help="the bundle's name in its manifest (default: affectgpt-<preset>)")
    ap.add_argument("--random-weights", action="store_true",
                    help="--preset: export although the fusion and LoRA are untrained (the manifest says so)")
    ap.add_argument("--vision-path", help="affectgpt-7b: local CLIP ViT-L/14 folder")
    ap.add_argument("--audio-path", help="affectgpt-7b: local chinese-hubert-large folder")
    ap.add_argument("--llm-path", help="affectgpt-7b: local Qwen2.5-7B-Instruct folder")
    args = ap.parse_args(argv)
    if args.preset and not args.random_weights:
        print(f"error: --preset {args.preset} has an untrained fusion and LoRA, so its answers mean nothing: "
              "pass --random-weights to export it anyway, or --checkpoint for trained weights", file=sys.stderr)
        return 2
    if args.preset and args.preset.startswith("affectgpt-7b") and not all((args.vision_path, args.audio_path, args.llm_path)):
        print(f"error: --preset {args.preset} needs --vision-path, --audio-path and --llm-path (local folders)",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("export").setLevel(logging.INFO)  # our progress; the exporters' own chatter stays quiet

    from train.checkpoint import CheckpointError, load_checkpoint
    from train.config import PRESETS
    from train.model import AffectGPT
    from export.bundle import export_bundle

    try:
        if args.checkpoint:
            model = load_checkpoint(args.checkpoint)
        elif args.preset.startswith("tiny"):
            model = AffectGPT.build(PRESETS[args.preset](args.seed))
        else:
            model = AffectGPT.build(PRESETS[args.preset](args.vision_path, args.audio_path, args.llm_path))
        manifest = export_bundle(model, args.out, args.llm_type, inplace=True, name=args.name,
                                 random_weights=args.preset is not None)
    except (ExportError, CheckpointError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    sizes = {role: entry.bytes for role, entry in manifest.files.items()}
    print(json.dumps({"bundle": args.out, "weights": manifest.weights, "bytes": sizes, "parity": manifest.parity}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
