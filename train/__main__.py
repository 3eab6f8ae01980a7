"""python -m train: fine-tune fusion + LoRA on a dataset (one process, or many under torchrun).

    python -m train --data corpus/manifest.jsonl --out runs/tiny --epochs 3
    python -m train --preset affectgpt-7b --vision-path CLIP --audio-path HUBERT --llm-path QWEN \
        --data MER/video:MER/track2_train_mercaptionplus.csv,MER/track3_train_mercaptionplus.csv:MER/subtitle_chieng.csv \
        --epochs 60 --iters-per-epoch 5000 --batch-size 3 --amp fp16 --out runs/paper      # the paper's recipe
    python -m train --data MEDIA:labels.csv,reasons.csv:subtitles.csv --features feats/ --out runs/x
    torchrun --nproc_per_node 8 -m train --init-checkpoint affectgpt-ckpt --data ... --out runs/big

Every option is a field of TrainConfig (train/config.py), the same object train() takes from Python.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from runtime.errors import run_cli
from train.config import TrainConfig
from train.errors import TrainingError

TYPES = {"str": str, "int": int, "float": float}


def parser() -> argparse.ArgumentParser:
    """One option per TrainConfig field: --batch-size for batch_size, its type from the annotation, its default and
    help from the field; a bool that defaults to true is turned off with --no-NAME."""
    ap = argparse.ArgumentParser(prog="python -m train", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    for f in dataclasses.fields(TrainConfig):
        flag, extra = "--" + f.name.replace("_", "-"), dict(f.metadata["argparse"])
        if f.type == "bool":
            if f.default:
                ap.add_argument("--no-" + flag[2:], dest=f.name, action="store_false", help="off: " + f.metadata["help"])
            else:
                ap.add_argument(flag, action="store_true", help=f.metadata["help"])
            continue
        required = f.default is dataclasses.MISSING
        ap.add_argument(flag, **{"type": TYPES[f.type.split("|")[0].strip()], **extra}, required=required,
                        default=None if required else f.default, help=f.metadata["help"])
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})

    import torch

    from train.loop import train

    try:
        result = train(cfg)
    except torch.OutOfMemoryError:
        raise TrainingError("out of GPU memory: a smaller --batch-size (with --grad-accum to keep the batch), "
                            "--grad-checkpointing, or --amp bf16") from None
    summary = {k: result[k] for k in ("steps", "val", "skipped", "replaced_too_long", "data", "world_size") if k in result}
    if "ranks_identical" in result:
        summary["ranks_identical"] = result["ranks_identical"]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
