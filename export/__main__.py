"""python -m export: build a bundle from a preset (seeded random weights) or a training checkpoint.

    python -m export --preset tiny --out bundles/tiny
    python -m export --checkpoint runs/ckpt --out bundles/mine
    python -m export --preset affectgpt-7b --vision-path CLIP_DIR --audio-path HUBERT_DIR --llm-path QWEN_DIR --out B
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
    src.add_argument("--preset", choices=("tiny", "affectgpt-7b"))
    src.add_argument("--checkpoint", metavar="DIR", help="a checkpoint folder written by train/")
    ap.add_argument("--out", required=True, metavar="DIR", help="bundle folder (a bundle already there is replaced)")
    ap.add_argument("--llm-type", choices=("f16", "f32"), default="f16")
    ap.add_argument("--seed", type=int, default=0, help="weights seed of random presets")
    ap.add_argument("--name", help="the bundle's name in its manifest (default: the folder's name)")
    ap.add_argument("--vision-path", help="affectgpt-7b: local CLIP ViT-L/14 folder")
    ap.add_argument("--audio-path", help="affectgpt-7b: local chinese-hubert-large folder")
    ap.add_argument("--llm-path", help="affectgpt-7b: local Qwen2.5-7B-Instruct folder")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("export").setLevel(logging.INFO)  # our progress; the exporters' own chatter stays quiet

    from train.checkpoint import CheckpointError, load_checkpoint
    from train.config import affectgpt_7b, tiny
    from train.model import AffectGPT
    from export.bundle import export_bundle

    try:
        if args.checkpoint:
            model = load_checkpoint(args.checkpoint)
        elif args.preset == "tiny":
            model = AffectGPT.build(tiny(args.seed))
        else:
            paths = (args.vision_path, args.audio_path, args.llm_path)
            if not all(paths):
                ap.error("--preset affectgpt-7b needs --vision-path, --audio-path and --llm-path (local folders)")
            model = AffectGPT.build(affectgpt_7b(*paths))
        manifest = export_bundle(model, args.out, args.llm_type, inplace=True, name=args.name)
    except (ExportError, CheckpointError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    sizes = {role: entry.bytes for role, entry in manifest.files.items()}
    print(json.dumps({"bundle": args.out, "bytes": sizes, "parity": manifest.parity}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
