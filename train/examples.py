"""What training reads: the split of a dataset into training and validation samples, each sample as model inputs
(media or cached features) with its question and answer, and the order of an epoch's batches."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import torch

from runtime.media import MediaError
from runtime.prompt import STOP_TEXT
from train.config import TrainConfig
from train.data import Sample, SkipLog, load_media, target
from train.face_prior import REAL_READING, misread_neutral, real_reading
from train.tokenizer import encode_text


def is_val(name: str, fraction: float) -> bool:
    """Whether sample `name` is held out: by a hash of the name, so the split never depends on the order."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def split(samples: list[Sample], fraction: float | None) -> tuple[list[Sample], list[Sample]]:
    """(training, validation) samples. fraction None: 0 for a release layout (the paper trains on all of
    MER-Caption+), 0.1 for a JSONL manifest."""
    if fraction is None:
        fraction = 0.0 if any(s.release for s in samples) else 0.1
    return [s for s in samples if not is_val(s.name, fraction)], [s for s in samples if is_val(s.name, fraction)]


class Examples:
    """Sample index → model inputs (media or cached features) and a target; broken media are skipped, a sample
    longer than max_length is replaced by another (the reference loader's behaviour)."""

    def __init__(self, samples, model, cfg: TrainConfig, feature_dir: Path | None, face_prior: float = 0.0,
                 silent_face_prior: float | None = None, neutral_prior: float = 0.0):
        self.samples, self.model, self.cfg, self.feature_dir = samples, model, cfg, feature_dir
        # shares of samples given a real face's reading (train/face_prior.py): every face, a silent person's, and a
        # face read `neutral` where a real face of its emotion would not be
        self.face_prior = face_prior
        self.silent_face_prior = face_prior if silent_face_prior is None else silent_face_prior
        self.neutral_prior = neutral_prior
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
                inputs = {"face": self.real_face(sample, feats["face"], rng), "audio": feats["audio"]}
            else:
                pixels, clips, vision_present = load_media(sample, self.model.cfg.preprocessing)
                inputs = {"pixel_values": torch.from_numpy(pixels), "clips": torch.from_numpy(clips),
                          "vision_present": torch.tensor(float(vision_present))}
        except MediaError:
            self.skipped.add(sample.name)
            return None
        return inputs, sample.subtitle, question, answer

    def real_face(self, sample: Sample, face: torch.Tensor, rng: random.Random) -> torch.Tensor:
        """The cached face features, or for a `face_prior` share of the samples whose face the device saw (features
        not zeroed) and whose emotion the table knows (`silent_face_prior` of those who say nothing, `neutral_prior`
        of those read `neutral` where a real face would not be): a real face's reading of it, drawn
        repeatably."""
        share = self.silent_face_prior if sample.silent else self.face_prior
        seen = face.abs().sum(-1) > 0
        if not (sample.face_emotion in REAL_READING and seen.any()):
            return face
        if self.neutral_prior and misread_neutral(sample.face_emotion, face[seen].float().mean(0).numpy()):
            share = max(share, self.neutral_prior)
        if not share:
            return face
        if rng.random() >= share:
            return face
        draw = real_reading(sample.face_emotion, face.shape[0], np.random.default_rng(rng.randrange(2**32)))
        return torch.from_numpy(draw).to(face.dtype)

    def batch(self, indices, epoch: int, device):
        """The model's keyword arguments for these samples (those that load), or None when none does."""
        items = [x for x in (self.load(i, epoch) for i in indices) if x is not None]
        if not items:
            return None
        inputs = {k: torch.stack([x[0][k] for x in items]).to(device) for k in items[0][0]}
        return dict(inputs, subtitles=[x[1] for x in items], questions=[x[2] for x in items],
                    answers=[x[3] for x in items])


def epoch_batches(n: int, epoch: int, cfg: TrainConfig, rank: int = 0, world: int = 1) -> list[list[int]]:
    """This rank's batches of an epoch over n samples: one shuffled pass, or iters_per_epoch batches taken from passes
    shuffled one after another (so epochs of a fixed length walk through the data, as the release's do)."""
    def shuffled(k: int) -> list[int]:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed + k)).tolist()
        order += order[: -n % world]  # every rank the same number of batches, or DDP waits forever (as DistributedSampler pads)
        return order[rank::world]

    if not cfg.iters_per_epoch:
        order = shuffled(epoch)
    else:
        per_pass = max(len(shuffled(0)), 1)
        first, last = epoch * cfg.iters_per_epoch * cfg.batch_size, (epoch + 1) * cfg.iters_per_epoch * cfg.batch_size
        stream = [i for k in range(first // per_pass, (last - 1) // per_pass + 1) for i in shuffled(k)]
        order = stream[first - (first // per_pass) * per_pass:][: last - first]
    return [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
