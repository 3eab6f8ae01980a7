"""python -m train: fine-tune fusion + LoRA on a dataset (one process, or many under torchrun).

    python -m train --data corpus/manifest.jsonl --out runs/tiny --epochs 3
    python -m train --preset affectgpt-7b --vision-path CLIP --audio-path HUBERT --llm-path QWEN \
        --data MER/video:MER/track2_train_mercaptionplus.csv,MER/track3_train_mercaptionplus.csv:MER/subtitle_chieng.csv \
        --epochs 60 --iters-per-epoch 5000 --batch-size 3 --amp fp16 --out runs/paper      # the paper's recipe
    python -m train --data MEDIA:labels.csv,reasons.csv:subtitles.csv --features feats/ --out runs/x
    torchrun --nproc_per_node 8 -m train --init-checkpoint affectgpt-ckpt --data ... --out runs/big
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    from train.loop import TrainConfig

    defaults = TrainConfig(data="", out="")
    ap = argparse.ArgumentParser(prog="python -m train", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--data", required=True, help="a .jsonl manifest or MEDIA_DIR:LABELS.csv[,MORE.csv][:SUBTITLES.csv]")
    ap.add_argument("--out", required=True, help="run folder: checkpoint/ and metrics.json")
    ap.add_argument("--preset", default=defaults.preset, choices=("tiny", "tiny-frame", "gemma-270m", "affectgpt-7b", "affectgpt-7b-frame"),
                    help="the model to build when not resuming or starting from --init-checkpoint")
    ap.add_argument("--vision-path", help="affectgpt-7b presets: local CLIP ViT-L/14 folder")
    ap.add_argument("--audio-path", help="affectgpt-7b presets: local chinese-hubert-large folder")
    ap.add_argument("--llm-path", help="affectgpt-7b presets: local Qwen2.5-7B-Instruct folder")
    ap.add_argument("--init-checkpoint", help="start from a checkpoint (e.g. an imported AffectGPT release)")
    ap.add_argument("--val-data")
    ap.add_argument("--val-fraction", type=float, default=defaults.val_fraction,
                    help="hold out this fraction by name (default: none for a release layout, 0.1 for a JSONL manifest)")
    ap.add_argument("--features", help="feature cache folder (python -m train.cache)")
    ap.add_argument("--label-type", choices=("ovlabel", "description", "hybrid"), default=defaults.label_type)
    for name in ("epochs", "batch_size", "grad_accum", "warmup_steps", "save_every", "seed", "iters_per_epoch",
                 "epoch_checkpoints", "max_length"):
        ap.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("lr", "warmup_lr", "weight_decay"):
        ap.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    ap.add_argument("--max-steps", type=int)
    ap.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"), default="auto")
    ap.add_argument("--grad-checkpointing", action="store_true")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint exactly")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    from train.checkpoint import CheckpointError
    from train.data import DataError
    from train.loop import TrainingError, train

    cfg = TrainConfig(data=args.data, out=args.out, preset=args.preset, init_checkpoint=args.init_checkpoint,
                      vision_path=args.vision_path, audio_path=args.audio_path, llm_path=args.llm_path,
                      iters_per_epoch=args.iters_per_epoch, epoch_checkpoints=args.epoch_checkpoints,
                      max_length=args.max_length,
                      seed=args.seed, val_data=args.val_data, val_fraction=args.val_fraction, features=args.features,
                      label_type=args.label_type, epochs=args.epochs, batch_size=args.batch_size,
                      grad_accum=args.grad_accum, lr=args.lr, warmup_lr=args.warmup_lr, warmup_steps=args.warmup_steps,
                      weight_decay=args.weight_decay, amp=args.amp, grad_checkpointing=args.grad_checkpointing,
                      save_every=args.save_every, max_steps=args.max_steps, resume=args.resume,
                      progress=not args.no_progress)
    try:
        result = train(cfg)
    except (TrainingError, DataError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    summary = {k: result[k] for k in ("steps", "val", "skipped", "replaced_too_long", "data", "world_size") if k in result}
    if "ranks_identical" in result:
        summary["ranks_identical"] = result["ranks_identical"]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
