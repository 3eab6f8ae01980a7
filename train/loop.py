"""The training loop: one flat loop, as the paper trains (AdamW, a constant learning rate; an optional warm-up).

Runs on one CPU or GPU, or on many under torchrun (DistributedDataParallel: NCCL on GPU, gloo on CPU; each
rank takes every world_size-th sample of the epoch's permutation; only rank 0 writes). Checkpoints hold the
trainable parameters (LoRA + fusion) with the config and tokenizer, plus the training state (optimizer,
scheduler, RNG, data position), all written atomically; `resume` continues exactly where the last
checkpoint left off. A NaN loss stops the run and leaves the last good checkpoint; a missing or broken
media file is skipped and counted.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from runtime.atomic import write_text
from runtime.media import MediaError
from runtime.prompt import STOP_TEXT
from train.data import SkipLog, check_face_crops, load_media, read_dataset, target
from train.errors import TrainError
from train.tokenizer import encode_text

CHECKPOINT_DIR = "checkpoint"
EPOCHS_DIR = "epochs"  # epochs/epoch-NNN: the weights at the end of each kept epoch
STATE_FILE = "training_state.pt"
METRICS_FILE = "metrics.json"


class TrainingError(TrainError):
    pass


@dataclass
class TrainConfig:
    data: str
    out: str
    preset: str = "tiny"  # tiny | tiny-frame | affectgpt-7b | affectgpt-7b-frame (the 7B ones need the three folders)
    init_checkpoint: str | None = None  # start from these weights instead of a preset
    vision_path: str | None = None  # affectgpt-7b presets: local CLIP / HuBERT / Qwen2.5 folders
    audio_path: str | None = None
    llm_path: str | None = None
    seed: int = 42  # the reference's
    val_data: str | None = None
    # of `data`, by name, when no val_data is given; None: 0 for a release layout (the paper trains on all of
    # MER-Caption+), 0.1 for a JSONL manifest
    val_fraction: float | None = None
    features: str | None = None  # a feature cache (train.cache): train on features, not media
    label_type: str = "hybrid"
    epochs: int = 1
    batch_size: int = 3
    grad_accum: int = 1
    lr: float = 1e-5
    warmup_lr: float = 1e-6
    # 0: none, as the official runner behaves (its configured 1e-6 → 1e-5 warm-up over 5000 steps never runs);
    # > 0: linear warm-up from warmup_lr
    warmup_steps: int = 0
    weight_decay: float = 0.05
    amp: str = "auto"  # auto (bf16 on CUDA when supported, else fp16 on CUDA, off on CPU) | off | bf16 (also CPU) | fp16
    grad_checkpointing: bool = False
    save_every: int = 0  # optimizer steps between checkpoints (0: at the end of each epoch only)
    max_steps: int | None = None  # stop after this many optimizer steps (budgeted runs)
    iters_per_epoch: int = 0  # batches per epoch (the release: 5000); 0: one pass over the data
    epoch_checkpoints: int = 1  # keep the weights of every N-th epoch in OUT/epochs/ (the paper picks the best of 30…60); 0: off
    max_length: int = 1024  # prompt + answer positions; a longer sample is replaced by another, as the reference loader does
    resume: bool = False
    progress: bool = True


def _is_val(name: str, fraction: float) -> bool:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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


class Examples:
    """Sample index → model inputs (media or cached features) and a target; broken media are skipped, a sample
    longer than max_length is replaced by another (the reference loader's behaviour)."""

    def __init__(self, samples, model, cfg: TrainConfig, feature_dir: Path | None):
        self.samples, self.model, self.cfg, self.feature_dir = samples, model, cfg, feature_dir
        self.skipped = SkipLog()
        self.too_long = SkipLog()

    def fits(self, sample, question: str, answer: str) -> bool:
        positions = len(self.model.prompt_ids(sample.subtitle, question)) + len(
            encode_text(self.model.tokenizer, answer + STOP_TEXT)) + 1
        return positions <= self.cfg.max_length

    def __len__(self):
        return len(self.samples)

    def load(self, index: int, epoch: int):
        sample = self.samples[index]
        rng = random.Random(f"{self.cfg.seed}:{epoch}:{sample.name}")  # hybrid draw: same after a resume
        question, answer = target(sample, self.cfg.label_type, rng)
        for _ in range(10):  # too long: another sample in its place, drawn repeatably
            if self.fits(sample, question, answer):
                break
            self.too_long.add(sample.name)
            sample = self.samples[rng.randrange(len(self.samples))]
            question, answer = target(sample, self.cfg.label_type, rng)
        else:
            return None
        try:
            if self.feature_dir is not None:
                from safetensors.torch import load_file

                path = self.feature_dir / f"{sample.name}.safetensors"
                if not path.is_file():
                    raise MediaError(f"{sample.name}: not in the feature cache")
                feats = load_file(str(path))
                inputs = {"face": feats["face"], "audio": feats["audio"]}
            else:
                pixels, clips = load_media(sample, self.model.cfg.preprocessing)
                inputs = {"pixel_values": torch.from_numpy(pixels), "clips": torch.from_numpy(clips)}
        except MediaError:
            self.skipped.add(sample.name)
            return None
        return inputs, sample.subtitle, question, answer

    def batch(self, indices, epoch: int, device):
        items = [x for x in (self.load(i, epoch) for i in indices) if x is not None]
        if not items:
            return None
        inputs = {k: torch.stack([x[0][k] for x in items]).to(device) for k in items[0][0]}
        return dict(inputs, subtitles=[x[1] for x in items], questions=[x[2] for x in items],
                    answers=[x[3] for x in items])


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


def train(cfg: TrainConfig) -> dict:
    from torch.nn.parallel import DistributedDataParallel
    from tqdm import tqdm

    from train.cache import open_cache
    from runtime.atomic import atomic_dir
    from train.checkpoint import load_checkpoint, save_checkpoint_to
    from train.config import PRESETS
    from train.model import AffectGPT

    rank, world = _distributed()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    out = Path(cfg.out)
    ckpt_dir = out / CHECKPOINT_DIR
    resuming = cfg.resume and (ckpt_dir / STATE_FILE).is_file()
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    if resuming:
        model = load_checkpoint(ckpt_dir)
    elif cfg.init_checkpoint:
        model = load_checkpoint(cfg.init_checkpoint)
    elif cfg.preset in ("tiny", "tiny-frame", "gemma-270m"):
        model = AffectGPT.build(PRESETS[cfg.preset](cfg.seed))
    elif cfg.preset in ("affectgpt-7b", "affectgpt-7b-frame"):
        folders = (cfg.vision_path, cfg.audio_path, cfg.llm_path)
        if not all(folders):  # the paper's single-stage recipe: pretrained parts, a fresh fusion and fresh LoRA
            raise TrainingError(f"--preset {cfg.preset} needs --vision-path, --audio-path and --llm-path (local "
                                "folders), or --init-checkpoint to start from the released weights")
        model = AffectGPT.build(PRESETS[cfg.preset](*folders))
    else:
        raise TrainingError(f"unknown preset {cfg.preset!r}")
    model.to(device)
    if cfg.grad_checkpointing:
        model.llm.gradient_checkpointing_enable()
        model.llm.enable_input_require_grads()

    samples = read_dataset(cfg.data)
    layout = check_face_crops(samples, model.cfg.preprocessing, log=lambda m: print(m, file=sys.stderr) if rank == 0 else None)
    if cfg.val_data:
        train_samples, val_samples = samples, read_dataset(cfg.val_data)
    else:
        fraction = cfg.val_fraction if cfg.val_fraction is not None else 0.0 if any(s.release for s in samples) else 0.1
        train_samples = [s for s in samples if not _is_val(s.name, fraction)]
        val_samples = [s for s in samples if _is_val(s.name, fraction)]
    if not train_samples:
        raise TrainingError("no training samples")
    feature_dir = open_cache(cfg.features, model) if cfg.features else None
    train_set = Examples(train_samples, model, cfg, feature_dir)
    val_set = Examples(val_samples, model, cfg, feature_dir)

    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg))
    amp = cfg.amp
    if amp == "auto":
        amp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if device.type == "cuda" else "off"
    if amp == "fp16" and device.type != "cuda":
        raise TrainingError("AMP fp16 needs a CUDA GPU; on the CPU use --amp bf16 (CPUs with bf16 units) or --amp off")
    scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)

    state = {"epoch": 0, "position": 0, "step": 0, "history": [], "val": []}
    if resuming:
        saved = torch.load(ckpt_dir / STATE_FILE, map_location="cpu", weights_only=False)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
        state = saved["progress"]
        _set_rng_state(saved["rng"])
    net = DistributedDataParallel(model) if world > 1 else model

    def save() -> None:
        if rank != 0:
            return
        with atomic_dir(ckpt_dir) as tmp:
            save_checkpoint_to(model, tmp)
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict(), "progress": state, "rng": _rng_state(),
                        "train_config": asdict(cfg)}, tmp / STATE_FILE)
        _write_json(out / METRICS_FILE, {"history": state["history"], "val": state["val"],
                                         "skipped": train_set.skipped.count + val_set.skipped.count})

    def validate(epoch: int) -> float | None:
        if not val_samples:
            return None
        model.eval()
        losses = []
        with torch.no_grad():
            for start in range(0, len(val_set), cfg.batch_size):
                batch = val_set.batch(range(start, min(start + cfg.batch_size, len(val_set))), -1, device)
                if batch is not None:
                    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                        losses.append(float(model(**batch)))
        model.train()
        return float(np.mean(losses)) if losses else None

    def epoch_batches(epoch: int) -> list[list[int]]:
        """This rank's batches of an epoch: one shuffled pass, or iters_per_epoch batches taken from passes
        shuffled one after another (so epochs of a fixed length walk through the data, as the release's do)."""
        def shuffled(k: int) -> list[int]:
            return torch.randperm(len(train_set), generator=torch.Generator().manual_seed(cfg.seed + k)).tolist()[rank::world]

        if not cfg.iters_per_epoch:
            order = shuffled(epoch)
        else:
            per_pass = max(len(shuffled(0)), 1)
            first, last = epoch * cfg.iters_per_epoch * cfg.batch_size, (epoch + 1) * cfg.iters_per_epoch * cfg.batch_size
            stream = [i for k in range(first // per_pass, (last - 1) // per_pass + 1) for i in shuffled(k)]
            order = stream[first - (first // per_pass) * per_pass:][: last - first]
        return [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]

    def keep_epoch(epoch: int) -> None:
        if rank == 0 and cfg.epoch_checkpoints and epoch % cfg.epoch_checkpoints == 0:
            with atomic_dir(out / EPOCHS_DIR / f"epoch-{epoch:03d}") as tmp:
                save_checkpoint_to(model, tmp)

    model.train()
    stop = False
    for epoch in range(state["epoch"], cfg.epochs):
        batches = epoch_batches(epoch)
        bar = tqdm(total=len(batches), initial=state["position"], desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (cfg.progress and rank == 0), file=sys.stderr)
        t_start, seen = time.perf_counter(), 0
        while state["position"] < len(batches):
            optimizer.zero_grad(set_to_none=True)
            step_losses = []
            for _ in range(cfg.grad_accum):
                if state["position"] >= len(batches):
                    break
                batch = train_set.batch(batches[state["position"]], epoch, device)
                state["position"] += 1
                bar.update(1)
                if batch is None:
                    continue
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    loss = net(**batch)
                if not torch.isfinite(loss):
                    raise TrainingError(f"loss is {float(loss.detach())} at step {state['step'] + 1} (epoch {epoch + 1}); "
                                        f"stopped, the last good checkpoint is {ckpt_dir if ckpt_dir.exists() else 'none'}")
                scaler.scale(loss / cfg.grad_accum).backward()
                step_losses.append(float(loss.detach()))
                seen += len(batch["answers"])
            if not step_losses:
                continue
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            state["step"] += 1
            state["history"].append({"step": state["step"], "epoch": epoch, "loss": float(np.mean(step_losses)),
                                     "lr": optimizer.param_groups[0]["lr"]})
            bar.set_postfix(loss=f"{np.mean(step_losses):.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}",
                            samples_s=f"{seen / (time.perf_counter() - t_start):.1f}")
            if cfg.save_every and state["step"] % cfg.save_every == 0:
                save()
            if cfg.max_steps and state["step"] >= cfg.max_steps:
                stop = True
                break
        bar.close()
        if stop:
            save()
            break
        state["val"].append({"epoch": epoch + 1, "loss": validate(epoch),
                             "samples_per_s": seen / max(time.perf_counter() - t_start, 1e-9)})
        state["epoch"], state["position"] = epoch + 1, 0
        save()
        keep_epoch(epoch + 1)

    result = {"steps": state["step"], "history": state["history"], "val": state["val"],
              "skipped": train_set.skipped.count + val_set.skipped.count, "world_size": world, "data": layout,
              "replaced_too_long": train_set.too_long.count + val_set.too_long.count}
    if world > 1:
        digests = [None] * world
        torch.distributed.all_gather_object(digests, _digest(model))
        result["ranks_identical"] = len(set(digests)) == 1
        torch.distributed.barrier()
    if rank == 0:
        _write_json(out / METRICS_FILE, {**{k: v for k, v in result.items()}})
    return result


def _write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, default=float))
