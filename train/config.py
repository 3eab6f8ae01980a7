"""Model configuration and the named presets.

`tiny` builds every part from configs with seeded random weights in seconds (tests, CI, smoke runs).
`affectgpt-7b` is the paper's model: CLIP ViT-L/14, chinese-hubert-large and Qwen2.5-7B-Instruct, each
loaded from a local folder the user names — nothing is fetched from a hub.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from runtime.manifest import Preprocessing
from runtime.prompt import EDGE_TEMPLATE, FRAME_TEMPLATE, OV_QUESTION, TEMPLATE

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class ModelConfig:
    preset: str
    seed: int = 0
    # Either a config (random weights, built here) or a local folder (pretrained weights) per part.
    vision: dict | None = None  # CLIPVisionConfig kwargs
    audio: dict | None = None  # HubertConfig kwargs
    llm: dict | None = None  # Qwen2Config kwargs
    vision_path: str | None = None
    audio_path: str | None = None
    llm_path: str | None = None
    tokenizer_vocab_size: int = 1024  # for a tokenizer trained here (tiny presets)
    llm_vocab_size: int | None = None  # embedding rows of a random LLM (default: the tokenizer's size)
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = LORA_TARGETS
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    template: str = TEMPLATE
    question: str = OV_QUESTION
    inference_bos: bool = False  # the reference prepends bos in training only
    llm_quant: str | None = None  # "8bit" | "4bit": bitsandbytes loading of a pretrained LLM (CUDA only)
    tokenizer_path: str | None = None  # a tokenizer.json to use instead of training the tiny one
    train_llm: bool = False  # train every LLM weight (a small LLM learnt from scratch) instead of LoRA
    fusion: str = "attention"  # "attention" (the released model) | "qformer" (ablation)
    vision_kind: str = "clip"  # "clip" (CLIP vision tower) | "fer" (the FER2013 expression network at vision_path)
    llm_base: str | None = None  # a GGUF base model from a package (runtime/base_models.py): LoRA on it, no llm_path
    qformer: dict = field(default_factory=dict)  # QFormerFusion options: width, heads, layers, queries, positions

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, raw: dict) -> "ModelConfig":
        raw = dict(raw)
        prep = dict(raw.pop("preprocessing", {}))
        for key in ("image_mean", "image_std"):
            if key in prep:
                prep[key] = tuple(prep[key])
        raw["lora_targets"] = tuple(raw.get("lora_targets", LORA_TARGETS))
        return cls(preprocessing=Preprocessing(**prep), **raw)


def tiny(seed: int = 0) -> ModelConfig:
    """Every part small enough to build, export and run in seconds; LLM widths are multiples of 256
    so that K-quants apply to every tensor."""
    return ModelConfig(
        preset="tiny",
        seed=seed,
        vision=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                    image_size=64, patch_size=16, projection_dim=48),
        audio=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=2,
                   conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
        llm=dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=1024, rms_norm_eps=1e-6,
                 tie_word_embeddings=False),
        tokenizer_vocab_size=1024,
        lora_r=8,
        lora_alpha=16,
        preprocessing=Preprocessing(image_size=64),
    )


def demo(seed: int = 0) -> ModelConfig:
    """The shipped demo: small enough for real time on a 2-core CPU and a bundle of a few MB. Its encoders are
    pretrained on the synthetic corpus (train/pretrain.py), its LLM learnt from scratch on the corpus answers."""
    return ModelConfig(
        preset="demo",
        seed=seed,
        vision=dict(hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
                    image_size=64, patch_size=8, projection_dim=128),
        audio=dict(hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
                   conv_dim=(32,) * 7, num_conv_pos_embeddings=32, num_conv_pos_embedding_groups=4),
        llm=dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=1024, rms_norm_eps=1e-6, tie_word_embeddings=True),
        tokenizer_vocab_size=1024,
        train_llm=True,
        preprocessing=Preprocessing(image_size=64),
    )


def gemma_270m(seed: int = 0) -> ModelConfig:
    """The embedded default: a pretrained LLM (Gemma-3-270M, the GGUF a registry package provides) tuned with LoRA as
    the paper tunes its LLM, the FER2013 expression network on face crops, the demo's small audio encoder
    (pretrained on the corpus by train/pretrain.py) and a short prompt (two cores read every prompt token)."""
    from train.fer import FER_WEIGHTS

    base = demo(seed)
    return ModelConfig(
        preset="gemma-270m",
        seed=seed,
        vision_kind="fer",
        vision_path=str(FER_WEIGHTS),
        audio=base.audio,
        llm_base="gemma-3-270m-q4_k_m",
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        template=EDGE_TEMPLATE,
        inference_bos=True,
        preprocessing=Preprocessing(image_size=64, image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5),
                                    face_crop=True),
    )


def tiny_frame(seed: int = 0) -> ModelConfig:
    """`tiny` as a frame model: raw frames at <FrameHere>, no face crop."""
    return dataclasses.replace(tiny(seed), preset="tiny-frame", template=FRAME_TEMPLATE)


def affectgpt_7b(vision_path: str, audio_path: str, llm_path: str) -> ModelConfig:
    """The released AffectGPT setup: face crops (BGR as the released model saw them), 8 frames, 8 × 2 s."""
    return ModelConfig(
        preset="affectgpt-7b",
        vision_path=vision_path,
        audio_path=audio_path,
        llm_path=llm_path,
        preprocessing=Preprocessing(image_size=224, channel_order="bgr", face_crop=True, audio_norm_scope="video"),
    )


def affectgpt_7b_frame(vision_path: str, audio_path: str, llm_path: str) -> ModelConfig:
    """The released frame model: raw frames in RGB (no face extractor on the device), <FrameHere> in the prompt."""
    return ModelConfig(
        preset="affectgpt-7b-frame",
        vision_path=vision_path,
        audio_path=audio_path,
        llm_path=llm_path,
        template=FRAME_TEMPLATE,
        preprocessing=Preprocessing(image_size=224, channel_order="rgb", face_crop=False, audio_norm_scope="video"),
    )


# Full-size shapes with random weights, for latency (which does not depend on weight values): the paper's
# encoders (CLIP ViT-L/14 at 224, HuBERT-large) with Qwen2.5 LLMs of three sizes.
CLIP_VIT_L14 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                    image_size=224, patch_size=14, projection_dim=768)
HUBERT_LARGE = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                    feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)
QWEN25 = {
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, tie_word_embeddings=True),
    "affectgpt-7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                         num_key_value_heads=4, tie_word_embeddings=False),
}


def full_size(shape: str, seed: int = 0) -> ModelConfig:
    """Random weights at the paper's encoder sizes and a Qwen2.5 LLM's (vocabulary 151,936 rows)."""
    llm = dict(QWEN25[shape], max_position_embeddings=4096, rms_norm_eps=1e-6, rope_theta=1000000.0)
    return ModelConfig(preset=f"shapes-{shape}", seed=seed, vision=dict(CLIP_VIT_L14), audio=dict(HUBERT_LARGE),
                       llm=llm, llm_vocab_size=151936, preprocessing=Preprocessing(image_size=224, audio_norm_scope="video"))


PRESETS = {"tiny": tiny, "tiny-frame": tiny_frame, "demo": demo, "gemma-270m": gemma_270m, "affectgpt-7b": affectgpt_7b,
           "affectgpt-7b-frame": affectgpt_7b_frame}
RELEASE_PRESETS = {"face": affectgpt_7b, "frame": affectgpt_7b_frame}  # the two released models, by visual input
