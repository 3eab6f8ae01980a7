"""Feature cache: the frozen encoders run once over a dataset; training then reads features, not video.

    python -m train.cache --preset tiny --data clips.jsonl --out features/
    python -m train.cache --checkpoint runs/x/checkpoint --data MEDIA:labels.csv:subs.csv --out features/

One safetensors file per clip (`face` [T, Dv], `audio` [K, Da]) and an index.json with the encoders'
fingerprint (a sha256 over their weights and the preprocessing), so a cache made by other encoders is
refused instead of silently used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from runtime.atomic import atomic_file
from runtime.errors import run_cli
from train.config import SEEDED, model_config, preset_argument
from train.data import DataError, SkipLog, load_media, read_dataset

INDEX = "index.json"


def encoder_fingerprint(model) -> str:
    digest = hashlib.sha256()
    for module in (model.vision, model.audio):
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(json.dumps(model.cfg.preprocessing.__dict__, sort_keys=True, default=list).encode())
    return digest.hexdigest()


@torch.no_grad()
def build_cache(model, samples, out: str | os.PathLike, progress: bool = True) -> dict:
    from safetensors.torch import save_file
    from tqdm import tqdm

    from runtime.media import MediaError

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = encoder_fingerprint(model)
    # the fingerprint goes in first: an interrupted run resumes, other encoders are refused
    if (out / INDEX).is_file() and json.loads((out / INDEX).read_text())["fingerprint"] != fingerprint:
        raise DataError(f"{out} holds features of other encoders or preprocessing: use a new folder")
    (out / INDEX).write_text(json.dumps({"fingerprint": fingerprint, "complete": False}))
    skipped = SkipLog()
    prep = model.cfg.preprocessing
    for sample in tqdm(samples, desc="features", disable=not progress, file=sys.stderr):
        path = out / f"{sample.name}.safetensors"
        if path.is_file():
            continue
        try:
            pixels, clips, vision_present = load_media(sample, prep)
        except MediaError:
            skipped.add(sample.name)
            continue
        face, audio = model.features(torch.from_numpy(pixels)[None], torch.from_numpy(clips)[None])
        if not vision_present:
            face = torch.zeros_like(face)
        with atomic_file(path) as tmp:
            save_file({"face": face[0].contiguous(), "audio": audio[0].contiguous()}, str(tmp))
    index = {"fingerprint": fingerprint, "complete": True, "skipped": skipped.count, "skipped_names": skipped.names}
    (out / INDEX).write_text(json.dumps(index, indent=2))
    return index


def open_cache(folder: str | os.PathLike, model) -> Path:
    folder = Path(folder)
    index = folder / INDEX
    if not index.is_file():
        raise DataError(f"{folder} is not a feature cache (no {INDEX}); make one with python -m train.cache")
    content = json.loads(index.read_text())
    if content["fingerprint"] != encoder_fingerprint(model):
        raise DataError(f"feature cache {folder} was made by other encoders or preprocessing: rebuild it")
    if not content.get("complete", True):
        raise DataError(f"feature cache {folder} is unfinished: run python -m train.cache again to complete it")
    return folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.cache", description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", **preset_argument(SEEDED))
    src.add_argument("--checkpoint")
    ap.add_argument("--seed", type=int, default=42, help="weights seed of the preset (as python -m train)")
    ap.add_argument("--data", required=True, help="a .jsonl manifest or MEDIA_DIR:LABELS.csv[:SUBTITLES.csv]")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from train.checkpoint import load_checkpoint
    from train.model import AffectGPT

    model = load_checkpoint(args.checkpoint) if args.checkpoint else AffectGPT.build(model_config(args.preset, args.seed))
    print(json.dumps(build_cache(model.eval(), read_dataset(args.data), args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
