"""An LLM's tensors made one at a time, with the LoRA merged into each weight as it is made — so that a GGUF of any
size is written without the model ever in memory (as llama.cpp's convert_hf_to_gguf.py does with lazy tensors).

Two sources: random weights at any shape (latency at the paper's 7B shapes: the values do not change the time), and
a local transformers folder read tensor by tensor from its safetensors shards (memory-mapped). The names and shapes
come from the model built on PyTorch's meta device, which allocates nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from export.gguf_llm import LazyTensor

# A weight's LoRA pair, made on demand: (→ A [r, in], → B [out, r], alpha / r).
LoraPair = tuple[Callable[[], np.ndarray], Callable[[], np.ndarray], float]


def meta_shapes(config) -> dict[str, tuple[int, ...]]:
    """{HF tensor name: shape} of the causal LM of `config`, without allocating it (tied output dropped)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    if config.tie_word_embeddings:
        shapes.pop("lm_head.weight", None)
    return shapes


def merged(make: Callable[[], np.ndarray], pair: LoraPair | None) -> Callable[[], np.ndarray]:
    """`make` with W + scale · B·A added, as peft's merge does, when the weight has a LoRA pair."""
    if pair is None:
        return make

    def make_merged() -> np.ndarray:
        weight = make()
        if not weight.flags.writeable:  # a view of a read-only file
            weight = weight.copy()
        a, b, scale = pair
        weight += np.float32(scale) * (b() @ a())
        return weight
    return make_merged


def _random(seed: int, index: int, shape: tuple[int, ...], std: float) -> np.ndarray:
    return np.random.default_rng([seed, index]).standard_normal(shape, dtype=np.float32) * np.float32(std)


def random_tensors(config, seed: int = 0, lora: dict[str, LoraPair] | None = None) -> list[LazyTensor]:
    """Random weights as transformers initialises them (normal with the config's initializer_range; norms 1,
    biases 0), each drawn from its own seeded stream when it is written."""
    std = float(getattr(config, "initializer_range", 0.02))
    lora = lora or {}
    out = []
    for index, (name, shape) in enumerate(meta_shapes(config).items()):
        if name.endswith("norm.weight"):
            make = lambda shape=shape: np.ones(shape, np.float32)  # noqa: E731
        elif name.endswith(".bias"):
            make = lambda shape=shape: np.zeros(shape, np.float32)  # noqa: E731
        else:
            make = lambda index=index, shape=shape: _random(seed, index, shape, std)  # noqa: E731
        out.append((name, shape, merged(make, lora.get(name))))
    return out


def random_lora(config, targets: tuple[str, ...], rank: int, alpha: float, seed: int = 0) -> dict[str, LoraPair]:
    """A LoRA pair for every weight of the targeted projections, random on both sides (peft would start B at zero,
    which would make the merge a no-op)."""
    pairs = {}
    for index, (name, shape) in enumerate(meta_shapes(config).items()):
        module = name.removesuffix(".weight")
        if name.endswith(".weight") and len(shape) == 2 and module.rsplit(".", 1)[-1] in targets:
            out_dim, in_dim = shape
            pairs[name] = (lambda i=index, d=in_dim: _random(seed + 1, i, (rank, d), 1 / np.sqrt(d)),
                           lambda i=index, d=out_dim: _random(seed + 2, i, (d, rank), 0.01),
                           alpha / rank)
    return pairs


def checkpoint_lora(weights: dict, alpha: float) -> dict[str, LoraPair]:
    """The LoRA pairs of a training checkpoint's trainable weights (`llm.base_model.model.<module>.lora_A.default.weight`)
    keyed by the base weight's HF name."""
    halves: dict[str, dict[str, object]] = {}
    prefix = "llm.base_model.model."
    for key, tensor in weights.items():
        if key.startswith(prefix) and ".lora_" in key:
            module, _, rest = key[len(prefix):].partition(".lora_")
            halves.setdefault(module + ".weight", {})[rest[0]] = tensor
    pairs = {}
    for name, half in halves.items():
        if set(half) != {"A", "B"}:
            raise ValueError(f"half a LoRA pair for {name}")
        rank = int(half["A"].shape[0])
        pairs[name] = (lambda t=half["A"]: t.float().numpy(), lambda t=half["B"]: t.float().numpy(), alpha / rank)
    return pairs


def folder_tensors(folder: str | Path, config, lora: dict[str, LoraPair] | None = None) -> list[LazyTensor]:
    """The weights of a local transformers folder (safetensors, one file or an index of shards), each read when it
    is written; a tied output layer is left out, as llama.cpp reuses the embedding."""
    from safetensors import safe_open

    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        where = {name: folder / shard for name, shard in json.loads(index.read_text())["weight_map"].items()}
    elif (folder / "model.safetensors").is_file():
        with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
            where = {name: folder / "model.safetensors" for name in f.keys()}
    else:
        raise ValueError(f"{folder} holds no safetensors weights (model.safetensors or its index)")
    lora = lora or {}
    shapes = meta_shapes(config)
    missing = sorted(set(shapes) - set(where))
    if missing:
        raise ValueError(f"{folder} lacks {len(missing)} weights of its config, e.g. {missing[:3]}")

    def read(name: str) -> np.ndarray:
        with safe_open(str(where[name]), framework="pt") as f:  # memory-mapped: only this tensor is read
            return f.get_tensor(name).float().numpy()

    return [(name, shape, merged(lambda name=name: read(name), lora.get(name))) for name, shape in shapes.items()]
