"""Model configuration, the table of named presets, and a training run's configuration.

Every command that takes `--preset` reads PRESETS: how a preset's weights come to be decides what can be done
with it. `tiny` builds every part from configs with seeded random weights in seconds (tests, CI, smoke runs);
`affectgpt-7b` is the paper's model: CLIP ViT-L/14, chinese-hubert-large and Qwen2.5-7B-Instruct, each loaded
from a local folder the user names — nothing is fetched from a hub; `gemma-270m` (the embedded default) and
`scratch` have encoders pretrained on the synthetic corpus first (python -m train.pretrain).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from typing import Callable

from runtime.manifest import Preprocessing
from runtime.prompt import EDGE_TEMPLATE, FRAME_TEMPLATE, OV_QUESTION, TEMPLATE
from train.errors import TrainError

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
    vision_output: str = "features"  # fer: "features" (pooled activations + logits) | "probabilities" (its 7 classes)
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


def scratch(seed: int = 0) -> ModelConfig:
    """Every part small and learnt here: real time on a 2-core CPU and a bundle of a few MB. Its encoders are
    pretrained on the synthetic corpus (train/pretrain.py), its LLM learnt from scratch on the corpus answers."""
    return ModelConfig(
        preset="scratch",
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
    the paper tunes its LLM, the FER2013 expression network on face crops, scratch's small audio encoder
    (pretrained on the corpus by train/pretrain.py) and a short prompt (two cores read every prompt token)."""
    from train.fer import FER_WEIGHTS

    base = scratch(seed)
    return ModelConfig(
        preset="gemma-270m",
        seed=seed,
        vision_kind="fer",
        vision_path=str(FER_WEIGHTS),
        vision_output="probabilities",  # what means the same on drawn and real faces
        audio=base.audio,
        llm_base="gemma-3-270m-q4_k_m",
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        template=EDGE_TEMPLATE,
        inference_bos=True,
        preprocessing=Preprocessing(image_size=64, image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5),
                                    face_crop=True, no_face="absent", face_margin=0.1),
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


SEEDED, FOLDERS, CORPUS = "seeded", "folders", "corpus"  # how a preset's weights come to be


@dataclass(frozen=True)
class Recipe:
    """How `python -m benchmarks.recipe` makes a preset's model from nothing: corpus size, epochs, training options."""

    clips: int
    epochs: int
    train: dict  # TrainConfig fields
    bundle_name: str
    bf16_on_cpu: bool = False  # autocast bf16 on a CPU with bf16 units: about twice as fast as fp32 there


@dataclass(frozen=True)
class Preset:
    """A named model. `weights` says where its weights come from, which decides the commands that take it:
    SEEDED (random from a seed: train, export --random-weights, train.cache), FOLDERS (pretrained parts from local
    folders: train, export --random-weights), CORPUS (encoders pretrained on the corpus: train.pretrain, then train;
    the recipe)."""

    name: str
    build: Callable[..., ModelConfig]  # (seed) → config; FOLDERS: (vision_path, audio_path, llm_path) → config
    weights: str
    about: str
    recipe: Recipe | None = None


PRESETS = {p.name: p for p in (
    Preset("tiny", tiny, SEEDED, "every part tiny and random: seconds (tests, smoke runs)"),
    Preset("tiny-frame", tiny_frame, SEEDED, "tiny as a frame model (raw frames, no face crop)"),
    Preset("scratch", scratch, CORPUS, "every part small and learnt on the corpus",
           Recipe(clips=1600, epochs=12, bundle_name="affectgpt-scratch",
                  train=dict(batch_size=16, lr=2e-3, warmup_lr=1e-4, warmup_steps=60, weight_decay=0.01))),
    Preset("gemma-270m", gemma_270m, CORPUS, "the embedded default: Gemma-3-270M + LoRA, the FER expression network",
           Recipe(clips=3200, epochs=2, bundle_name="affectgpt-edge-default", bf16_on_cpu=True,
                  train=dict(batch_size=8, lr=3e-4, warmup_lr=1e-5, warmup_steps=30, weight_decay=0.01,
                             face_prior=0.2, neutral_prior=1.0))),
    Preset("affectgpt-7b", affectgpt_7b, FOLDERS, "the paper's model on face crops (CLIP, HuBERT, Qwen2.5-7B folders)"),
    Preset("affectgpt-7b-frame", affectgpt_7b_frame, FOLDERS, "the paper's frame model (raw frames)"),
)}
RENAMED = {"demo": "scratch"}  # old name → new: the old one still works, and says so
RELEASE_PRESETS = {"face": "affectgpt-7b", "frame": "affectgpt-7b-frame"}  # the two released models, by visual input


class PresetError(TrainError):
    pass


def preset(name: str) -> Preset:
    """The preset called `name` (an old name is followed to the new one, with a note on stderr)."""
    if name in RENAMED:
        print(f"note: preset {name!r} is renamed {RENAMED[name]!r}", file=sys.stderr)
        name = RENAMED[name]
    if name not in PRESETS:
        raise PresetError(f"unknown preset {name!r}: choose from {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_names(*weights: str) -> tuple[str, ...]:
    """The presets whose weights come the given ways (all when none is given), in the table's order."""
    return tuple(n for n, p in PRESETS.items() if not weights or p.weights in weights)


def model_config(name: str, seed: int = 0, vision_path: str | None = None, audio_path: str | None = None,
                 llm_path: str | None = None) -> ModelConfig:
    """The ModelConfig of preset `name`: from the seed, or (FOLDERS presets) from the three local folders."""
    p = preset(name)
    if p.weights != FOLDERS:
        return p.build(seed)
    if not all((vision_path, audio_path, llm_path)):
        raise PresetError(f"--preset {p.name} needs --vision-path, --audio-path and --llm-path (local folders)")
    return p.build(vision_path, audio_path, llm_path)


def preset_argument(*weights: str) -> dict:
    """argparse keywords for a --preset option that takes the presets whose weights come the given ways."""
    names = preset_names(*weights)

    def parse(name: str) -> str:
        try:
            found = preset(name).name
        except PresetError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        if found not in names:
            raise argparse.ArgumentTypeError(f"preset {found!r} does not fit here: choose from {', '.join(names)}")
        return found

    return dict(type=parse, metavar="{" + ",".join(names) + "}",
                help="; ".join(f"{n}: {PRESETS[n].about}" for n in names))


LABEL_TYPES = ("ovlabel", "description", "hybrid")
AMP_MODES = ("auto", "off", "bf16", "fp16")


def option(help: str, **argparse_keywords) -> dict:
    """A TrainConfig field's metadata: its --help text and argparse keywords beyond the type its annotation gives."""
    return {"help": help, "argparse": argparse_keywords}


@dataclass
class TrainConfig:
    """One training run (python -m train builds its options from these fields)."""

    data: str = field(metadata=option("a .jsonl manifest or MEDIA_DIR:LABELS.csv[,MORE.csv][:SUBTITLES.csv]"))
    out: str = field(metadata=option("run folder: checkpoint/ and metrics.json"))
    preset: str = field(default="tiny", metadata=option(
        "the model to build when not resuming or starting from --init-checkpoint: " + preset_argument()["help"],
        **{k: v for k, v in preset_argument().items() if k != "help"}))
    init_checkpoint: str | None = field(default=None, metadata=option(
        "start from a checkpoint (e.g. an imported AffectGPT release) instead of a preset"))
    vision_path: str | None = field(default=None, metadata=option("affectgpt-7b presets: local CLIP ViT-L/14 folder"))
    audio_path: str | None = field(default=None, metadata=option("affectgpt-7b presets: local chinese-hubert-large folder"))
    llm_path: str | None = field(default=None, metadata=option("affectgpt-7b presets: local Qwen2.5-7B-Instruct folder"))
    seed: int = field(default=42, metadata=option("weights of a seeded preset, data order, hybrid draws (42: the reference's)"))
    val_data: str | None = field(default=None, metadata=option("a held-out manifest (else a fraction of --data)"))
    val_fraction: float | None = field(default=None, metadata=option(
        "hold out this fraction by name (default: none for a release layout, as the paper trains on all of "
        "MER-Caption+; 0.1 for a JSONL manifest)"))
    features: str | None = field(default=None, metadata=option(
        "feature cache folder (python -m train.cache): train on features, not media"))
    face_prior: float = field(default=0.0, metadata=option(
        "share of training samples (with --features, a vision graph that gives expression probabilities and a "
        "manifest that says each clip's face_emotion) whose face features are drawn from what a real face of that "
        "emotion reads as (train/face_prior.py); 0: none"))
    silent_face_prior: float | None = field(default=None, metadata=option(
        "the same share for people in view who say nothing (manifest: silent), whose face alone tells the labels, "
        "as a still, silent driver's does (default: --face-prior)"))
    neutral_prior: float = field(default=0.0, metadata=option(
        "the same share for drawn faces read `neutral` whose emotion a real face does not read so (drawn angry, sad "
        "and disgusted faces), so that a neutral reading means a neutral face (train/face_prior.py); 0: none"))
    label_type: str = field(default="hybrid", metadata=option("hybrid draws one per sample per epoch",
                                                               choices=LABEL_TYPES))
    epochs: int = field(default=1, metadata=option("passes over the data (or of --iters-per-epoch batches)"))
    batch_size: int = field(default=3, metadata=option("samples per batch"))
    grad_accum: int = field(default=1, metadata=option("batches per optimizer step"))
    lr: float = field(default=1e-5, metadata=option("learning rate after the warm-up (constant)"))
    warmup_lr: float = field(default=1e-6, metadata=option("learning rate the warm-up starts from"))
    warmup_steps: int = field(default=0, metadata=option(
        "linear warm-up steps; 0: none, as the official runner behaves (its configured warm-up never runs)"))
    weight_decay: float = field(default=0.05, metadata=option("AdamW's, on matrices only"))
    amp: str = field(default="auto", metadata=option(
        "auto: bf16 on CUDA when supported, else fp16 on CUDA, off on CPU; bf16 also on CPU", choices=AMP_MODES))
    grad_checkpointing: bool = field(default=False, metadata=option("recompute the LLM's activations: less memory"))
    save_every: int = field(default=0, metadata=option(
        "optimizer steps between checkpoints (0: at the end of each epoch only)"))
    max_steps: int | None = field(default=None, metadata=option("stop after this many optimizer steps"))
    iters_per_epoch: int = field(default=0, metadata=option(
        "batches per epoch (the release: 5000); 0: one pass over the data"))
    epoch_checkpoints: int = field(default=1, metadata=option(
        "keep the weights of every N-th epoch in OUT/epochs/ (the paper picks the best of 30…60); 0: none"))
    max_length: int = field(default=1024, metadata=option(
        "prompt + answer positions; a longer sample is replaced by another, as the reference loader does"))
    resume: bool = field(default=False, metadata=option("continue from OUT/checkpoint exactly"))
    progress: bool = field(default=True, metadata=option("a progress bar with loss, learning rate and samples/s"))
