"""Import the released AffectGPT checkpoint into our model.

    python -m train.import_affectgpt CKPT.pth --clip CLIP_DIR --hubert HUBERT_DIR --llm QWEN_DIR --out OURS
    python -m train.import_affectgpt CKPT.pth --model frame ...      # the frame model (raw frames, <FrameHere>)

The release stores only trainable parameters (`torch.save({"model": state_dict, ...})`): the attention
fusion / projection layers and peft's LoRA weights of the LLM. The frozen encoders and LLM come from the
three local folders. The face and frame models share their key names (the visual token comes from face
crops or from raw frames), so `--model` says which one a checkpoint is. Keys map by the table below; nothing is merged or dropped silently: every key that
does not map, and every parameter of ours that stays unset, is reported (and unset ones fail the import).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from runtime.errors import run_cli
from train.config import RELEASE_PRESETS, model_config

# Official key prefix → ours. The fusion keeps the reference's layer names, so the map is one-to-one.
KEY_MAP = [
    (r"^(video_attention_mlp|affectgpt_proj|audio_attention_mlp|audio_llama_proj|multi_video_embs|"
     r"multi_audio_embs|attention_mlp|fc_att|multi_llama_proj)\.(weight|bias)$", r"fusion.\1.\2"),
    (r"^llama_model\.base_model\.model\.(.+\.lora_[AB])\.default\.weight$", r"llm.base_model.model.\1.default.weight"),
]
# In the release but unused for video input: reported, not an error.
KNOWN_UNUSED = (r"^image_llama_proj\.",)


def map_key(key: str) -> str | None:
    for pattern, replacement in KEY_MAP:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    return None


def lora_rank(state: dict) -> int:
    ranks = {int(v.shape[0]) for k, v in state.items() if k.endswith("lora_A.default.weight")}
    if len(ranks) != 1:
        raise ValueError(f"cannot tell the LoRA rank from the checkpoint (found {sorted(ranks) or 'no LoRA'})")
    return ranks.pop()


def match_state(state: dict, ours: dict) -> tuple[dict, dict]:
    """Release keys (any tensors with a `.shape`, meta tensors too) → our parameter names.
    → (mapped {ours: release tensor}, report); a shape that does not fit, or a trainable parameter of ours
    left without a value, raises ValueError."""
    mapped, unmatched, unused = {}, [], []
    for key, tensor in state.items():
        target = map_key(key)
        if target is None:
            (unused if any(re.match(p, key) for p in KNOWN_UNUSED) else unmatched).append(key)
        elif target not in ours:
            unmatched.append(key)
        elif tuple(ours[target].shape) != tuple(tensor.shape):
            raise ValueError(f"{key}: shape {list(tensor.shape)} does not fit {target} {list(ours[target].shape)}")
        else:
            mapped[target] = tensor
    trainable = {k for k, p in ours.items() if p.requires_grad}
    missing = sorted(trainable - set(mapped))
    if missing:
        raise ValueError(f"{len(missing)} trainable parameters have no value in the checkpoint, e.g. {missing[:3]}")
    return mapped, {"mapped": len(mapped), "unmatched": unmatched, "known_unused": unused, "missing": missing}


def import_checkpoint(ckpt_path: str, clip: str, hubert: str, llm: str, lora_alpha: int = 32,
                      model_kind: str = "face") -> tuple:
    """→ (our AffectGPT with the release's weights, report dict). `model_kind`: "face" or "frame"."""
    import torch

    from train.model import AffectGPT

    if model_kind not in RELEASE_PRESETS:
        raise ValueError(f"unknown released model {model_kind!r}: choose from {', '.join(RELEASE_PRESETS)}")
    raw = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    state = raw["model"] if isinstance(raw, dict) and "model" in raw else raw
    cfg = model_config(RELEASE_PRESETS[model_kind], vision_path=clip, audio_path=hubert, llm_path=llm)
    cfg.lora_r, cfg.lora_alpha = lora_rank(state), lora_alpha
    model = AffectGPT.build(cfg)
    mapped, report = match_state(state, dict(model.named_parameters()))
    model.load_state_dict(mapped, strict=False)
    return model, {**report, "lora_rank": cfg.lora_r, "model": model_kind}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.import_affectgpt", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--clip", required=True, help="local openai/clip-vit-large-patch14 folder")
    ap.add_argument("--hubert", required=True, help="local TencentGameMate/chinese-hubert-large folder")
    ap.add_argument("--llm", required=True, help="local Qwen/Qwen2.5-7B-Instruct folder")
    ap.add_argument("--lora-alpha", type=int, default=32)
    ap.add_argument("--model", choices=tuple(RELEASE_PRESETS), default="face",
                    help="face: the released face-crop model (default); frame: the raw-frame model")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from train.checkpoint import save_checkpoint

    if not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint not found: {args.checkpoint}")
    model, report = import_checkpoint(args.checkpoint, args.clip, args.hubert, args.llm, args.lora_alpha, args.model)
    save_checkpoint(model, args.out)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    # torch.load and the key matching refuse a file that is not the release with these (RuntimeError: a shape)
    sys.exit(run_cli(main, expected=(OSError, ValueError, RuntimeError)))
