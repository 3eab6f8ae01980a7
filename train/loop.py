"""The training loop: one flat loop, as the paper trains (AdamW, a constant learning rate; an optional warm-up).

Runs on one CPU or GPU, or on many under torchrun (DistributedDataParallel: NCCL on GPU, gloo on CPU; each
rank takes every world_size-th sample of the epoch's permutation; only rank 0 writes). Checkpoints hold the
trainable parameters (LoRA + fusion) with the config and tokenizer, plus the training state (train/state.py),
all written atomically; `resume` continues exactly where the last checkpoint left off. A NaN loss stops the run
and leaves the last good checkpoint; a missing or broken media file is skipped and counted (train/examples.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from runtime.atomic import atomic_dir, write_text
from train.config import RELEASE_PRESETS, PresetError, TrainConfig, model_config
from train.data import check_face_crops, read_dataset
from train.errors import TrainingError
from train.examples import Examples, epoch_batches, split
from train.state import STATE_FILE, Progress, resume_state, save_state

CHECKPOINT_DIR = "checkpoint"
EPOCHS_DIR = "epochs"  # epochs/epoch-NNN: the weights at the end of each kept epoch
METRICS_FILE = "metrics.json"


def check_face_prior(cfg: TrainConfig, model, samples) -> None:
    """--face-prior needs cached features whose face part is the expression network's probabilities, and samples
    that say what their face shows."""
    for flag, share in (("--face-prior", cfg.face_prior), ("--silent-face-prior", cfg.silent_face_prior),
                        ("--neutral-prior", cfg.neutral_prior)):
        if share is not None and not 0 <= share <= 1:
            raise TrainingError(f"{flag} must be in [0, 1], not {share}")
    if not cfg.features:
        raise TrainingError("--face-prior replaces cached face features: give --features")
    if model.cfg.vision_kind != "fer" or model.cfg.vision_output != "probabilities":
        raise TrainingError("--face-prior needs a vision graph that gives expression probabilities "
                            "(the gemma-270m preset's FER network)")
    if not any(s.face_emotion for s in samples):
        raise TrainingError("--face-prior needs a manifest whose rows say face_emotion (the corpus's do)")


def train(cfg: TrainConfig) -> dict:
    from torch.nn.parallel import DistributedDataParallel
    from tqdm import tqdm

    from train.cache import open_cache
    from train.checkpoint import save_checkpoint_to

    rank, world = _distributed()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    out = Path(cfg.out)
    ckpt_dir = out / CHECKPOINT_DIR
    resuming = cfg.resume and (ckpt_dir / STATE_FILE).is_file()
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    model = starting_model(cfg, ckpt_dir if resuming else None).to(device)
    if cfg.grad_checkpointing:
        model.llm.gradient_checkpointing_enable()
        model.llm.enable_input_require_grads()

    samples = read_dataset(cfg.data)
    layout = check_face_crops(samples, model.cfg.preprocessing, log=lambda m: print(m, file=sys.stderr) if rank == 0 else None,
                              openface=model.cfg.preset in RELEASE_PRESETS.values())
    train_samples, val_samples = (samples, read_dataset(cfg.val_data)) if cfg.val_data else split(samples, cfg.val_fraction)
    if not train_samples:
        raise TrainingError("no training samples")
    feature_dir = open_cache(cfg.features, model) if cfg.features else None
    if cfg.face_prior or cfg.silent_face_prior or cfg.neutral_prior:
        check_face_prior(cfg, model, train_samples)
    train_set = Examples(train_samples, model, cfg, feature_dir, cfg.face_prior, cfg.silent_face_prior,
                         cfg.neutral_prior)
    val_set = Examples(val_samples, model, cfg, feature_dir)

    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg))
    dtype = autocast_dtype(cfg.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    progress = resume_state(ckpt_dir, optimizer, scheduler, scaler) if resuming else Progress()
    net = DistributedDataParallel(model) if world > 1 else model

    model.train()
    stopped = False
    for epoch in range(progress.epoch, cfg.epochs):
        batches = epoch_batches(len(train_set), epoch, cfg, rank, world)
        bar = tqdm(total=len(batches), initial=progress.position, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (cfg.progress and rank == 0), file=sys.stderr)
        t_start, seen = time.perf_counter(), 0
        while progress.position < len(batches) and not stopped:
            optimizer.zero_grad(set_to_none=True)
            losses = []
            for indices in batches[progress.position:progress.position + cfg.grad_accum]:
                progress.position += 1
                bar.update(1)
                batch = train_set.batch(indices, epoch, device)
                if batch is None:
                    continue
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    loss = net(**batch)
                if not torch.isfinite(loss):
                    raise TrainingError(f"loss is {float(loss.detach())} at step {progress.step + 1} (epoch {epoch + 1}); "
                                        f"stopped, the last good checkpoint is {ckpt_dir if ckpt_dir.exists() else 'none'}")
                scaler.scale(loss / cfg.grad_accum).backward()
                losses.append(float(loss.detach()))
                seen += len(batch["answers"])
            if not losses:
                continue
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            progress.step += 1
            lr = optimizer.param_groups[0]["lr"]
            progress.history.append({"step": progress.step, "epoch": epoch, "loss": float(np.mean(losses)), "lr": lr})
            bar.set_postfix(loss=f"{np.mean(losses):.4f}", lr=f"{lr:.2e}",
                            samples_s=f"{seen / (time.perf_counter() - t_start):.1f}")
            stopped = bool(cfg.max_steps and progress.step >= cfg.max_steps)
            if rank == 0 and (stopped or cfg.save_every and progress.step % cfg.save_every == 0):
                save_run(out, model, optimizer, scheduler, scaler, progress, cfg, train_set, val_set)
        bar.close()
        if stopped:  # mid-epoch: no validation; a resume goes on from the next batch
            break
        progress.val.append({"epoch": epoch + 1, "loss": validation_loss(model, val_set, cfg.batch_size, device, dtype),
                             "samples_per_s": seen / max(time.perf_counter() - t_start, 1e-9)})
        progress.epoch, progress.position = epoch + 1, 0
        if rank == 0:
            save_run(out, model, optimizer, scheduler, scaler, progress, cfg, train_set, val_set)
            if cfg.epoch_checkpoints and (epoch + 1) % cfg.epoch_checkpoints == 0:
                with atomic_dir(out / EPOCHS_DIR / f"epoch-{epoch + 1:03d}") as tmp:
                    save_checkpoint_to(model, tmp)

    result = {"steps": progress.step, "history": progress.history, "val": progress.val,
              "skipped": train_set.skipped.count + val_set.skipped.count, "world_size": world, "data": layout,
              "replaced_too_long": train_set.too_long.count + val_set.too_long.count}
    if world > 1:
        digests = [None] * world
        torch.distributed.all_gather_object(digests, _digest(model))
        result["ranks_identical"] = len(set(digests)) == 1
        torch.distributed.barrier()
    if rank == 0:
        _write_json(out / METRICS_FILE, result)
    return result


def save_run(out: Path, model, optimizer, scheduler, scaler, progress: Progress, cfg: TrainConfig,
             train_set: Examples, val_set: Examples) -> None:
    """OUT/checkpoint (the weights and the training state, one atomic folder), then OUT/metrics.json."""
    from train.checkpoint import save_checkpoint_to

    with atomic_dir(out / CHECKPOINT_DIR) as tmp:
        save_checkpoint_to(model, tmp)
        save_state(tmp, optimizer, scheduler, scaler, progress, asdict(cfg))
    _write_json(out / METRICS_FILE, {"history": progress.history, "val": progress.val,
                                     "skipped": train_set.skipped.count + val_set.skipped.count})


def starting_model(cfg: TrainConfig, resume_from: Path | None):
    """The model a run starts from: the checkpoint it resumes, its --init-checkpoint, or its preset built fresh."""
    from train.checkpoint import load_checkpoint
    from train.model import AffectGPT

    if resume_from is not None:
        return load_checkpoint(resume_from)
    if cfg.init_checkpoint:
        return load_checkpoint(cfg.init_checkpoint)
    try:  # the paper's single-stage recipe: pretrained parts, a fresh fusion and fresh LoRA
        config = model_config(cfg.preset, cfg.seed, cfg.vision_path, cfg.audio_path, cfg.llm_path)
    except PresetError as err:
        raise TrainingError(f"{err}, or --init-checkpoint to start from the released weights") from None
    return AffectGPT.build(config)


def param_groups(model, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only: none on biases and other 1-D parameters, as in the paper."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up from warmup_lr to lr, then constant (the reference's cosine with min = init = lr)."""
    if step >= cfg.warmup_steps:
        return 1.0
    return (cfg.warmup_lr + (cfg.lr - cfg.warmup_lr) * step / max(cfg.warmup_steps, 1)) / cfg.lr


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of an --amp mode on this device (None: full precision)."""
    if amp == "auto":
        amp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if device.type == "cuda" else "off"
    if amp == "fp16" and device.type != "cuda":
        raise TrainingError("AMP fp16 needs a CUDA GPU; on the CPU use --amp bf16 (CPUs with bf16 units) or --amp off")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)


def validation_loss(model, examples: Examples, batch_size: int, device, dtype) -> float | None:
    """Mean loss over the validation samples (None when there are none)."""
    if not len(examples):
        return None
    model.eval()
    losses = []
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = examples.batch(range(start, min(start + batch_size, len(examples))), -1, device)
            if batch is not None:
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    losses.append(float(model(**batch)))
    model.train()
    return float(np.mean(losses)) if losses else None


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        if torch.cuda.is_available():
            # NCCL needs one GPU per process: say so, rather than fail inside NCCL on a GPU that is not there
            local_rank, gpus = int(os.environ.get("LOCAL_RANK", 0)), torch.cuda.device_count()
            if local_rank >= gpus:
                raise TrainingError(f"{os.environ.get('LOCAL_WORLD_SIZE', '?')} processes on this node but {gpus} GPU(s): "
                                    f"use --nproc_per_node {gpus}, or CUDA_VISIBLE_DEVICES= to train on the CPU (gloo)")
            torch.cuda.set_device(local_rank)
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (torch.distributed.get_rank() if world > 1 else 0), world


def _digest(model) -> str:
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if p.requires_grad:
            digest.update(p.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def _write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, default=float))
