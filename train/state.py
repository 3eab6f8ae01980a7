"""What a training run carries from step to step and across a resume: its place in the data, the step, the loss
history and every random generator's state, saved with the optimizer beside the checkpoint's weights
(OUT/checkpoint/training_state.pt) so that `resume` continues exactly."""

from __future__ import annotations

import pickle
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from train.errors import TrainingError

STATE_FILE = "training_state.pt"


@dataclass
class Progress:
    epoch: int = 0  # epochs finished
    position: int = 0  # batches of the current epoch done
    step: int = 0  # optimizer steps done
    history: list[dict] = field(default_factory=list)  # per step: step, epoch, loss, lr
    val: list[dict] = field(default_factory=list)  # per epoch: epoch, validation loss, samples_per_s


def rng_state() -> dict:
    # numpy's state as plain numbers: the state file is read back with torch.load(weights_only=True), which
    # takes tensors and plain containers only, never pickled objects that could run code
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
            "python": random.getstate(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(folder: Path, optimizer, scheduler, scaler, progress: Progress, train_config: dict) -> None:
    """FOLDER/training_state.pt: the optimizer, scheduler and scaler, the progress, every RNG, the run's config."""
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "progress": asdict(progress), "rng": rng_state(), "train_config": train_config}, folder / STATE_FILE)


def load_state(path: Path) -> dict:
    """The training state saved beside a checkpoint, read as data only (weights_only: no pickled code runs)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise TrainingError(f"{path} holds more than tensors and plain values (saved by an older version?): "
                            f"start without --resume ({str(err).splitlines()[0]})") from None


def resume_state(folder: Path, optimizer, scheduler, scaler) -> Progress:
    """Load FOLDER/training_state.pt into the optimizer, scheduler, scaler and the RNGs. → the progress."""
    saved = load_state(folder / STATE_FILE)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    scaler.load_state_dict(saved["scaler"])
    set_rng_state(saved["rng"])
    return Progress(**saved["progress"])
