"""A peft LoRA (unmerged) ↔ a llama.cpp LoRA adapter GGUF, applied at run time on top of the base GGUF.

The adapter holds, per adapted weight W of the base, `<gguf name of W>.lora_a` ([r, in]) and `.lora_b` ([out, r]);
llama.cpp adds scale · B·A·x with scale = alpha / r, which is peft's own scaling. Names come from gguf's tensor map of
the base architecture, so the adapter fits only a base with those tensors (llama.cpp refuses any other).
"""

from __future__ import annotations

import os
import re

import gguf
import numpy as np

from runtime.atomic import atomic_file

ARCHITECTURES = {"Gemma3ForCausalLM": gguf.MODEL_ARCH.GEMMA3, "Qwen2ForCausalLM": gguf.MODEL_ARCH.QWEN2}
_LORA_RE = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<half>[AB])(?:\.default)?\.weight$")


def lora_pairs(peft_llm) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{HF weight name of the base: (A [r, in], B [out, r])} of a peft model, fp32."""
    halves: dict[str, dict[str, np.ndarray]] = {}
    for name, tensor in peft_llm.state_dict().items():
        match = _LORA_RE.match(name)
        if match:
            halves.setdefault(match["module"] + ".weight", {})[match["half"]] = tensor.detach().float().cpu().numpy()
    missing = [name for name, pair in halves.items() if set(pair) != {"A", "B"}]
    if missing or not halves:
        raise ValueError(f"not a LoRA model or half a pair: {missing[:3] or 'no lora_A / lora_B tensors'}")
    return {name: (pair["A"], pair["B"]) for name, pair in halves.items()}


def _architecture(peft_llm) -> gguf.MODEL_ARCH:
    base = peft_llm.get_base_model()
    arch_name = base.config.architectures[0] if base.config.architectures else type(base).__name__
    if arch_name not in ARCHITECTURES:
        raise ValueError(f"no GGUF adapter mapping for {arch_name}; supported: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch_name]


def gguf_name(peft_llm, hf_name: str) -> str:
    """The GGUF name of the base weight `hf_name` (a key of lora_pairs) that the adapter's tensors are named after."""
    arch = _architecture(peft_llm)
    tensor_map = gguf.get_tensor_name_map(arch, peft_llm.get_base_model().config.num_hidden_layers)
    # a peft model names the base's weights below its own prefix: model.layers.N... as in the HF base
    base_name = hf_name.removeprefix("base_model.model.")
    name = tensor_map.get_name(base_name, try_suffixes=(".weight",))
    if name is None:
        raise ValueError(f"no GGUF name for {base_name}")
    return name


def write_lora_gguf(peft_llm, path: str | os.PathLike, name: str = "affectgpt-lora") -> dict:
    """Write the adapter of `peft_llm` to `path`. → {"rank", "alpha", "tensors"} as written."""
    config = peft_llm.peft_config["default"]
    arch = _architecture(peft_llm)
    pairs = lora_pairs(peft_llm)
    ranks = {a.shape[0] for a, _ in pairs.values()}
    if ranks != {config.r} or config.rank_pattern or config.alpha_pattern:
        raise ValueError(f"one rank for every weight is supported (found {sorted(ranks)})")
    with atomic_file(path) as tmp:
        writer = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[arch])
        writer.add_name(name)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config.lora_alpha))
        for hf_name, (a, b) in sorted(pairs.items()):
            target = gguf_name(peft_llm, hf_name)
            writer.add_tensor(target + ".lora_a", np.ascontiguousarray(a, np.float32))
            writer.add_tensor(target + ".lora_b", np.ascontiguousarray(b, np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return {"rank": int(config.r), "alpha": float(config.lora_alpha), "tensors": 2 * len(pairs)}


def read_lora_gguf(path: str | os.PathLike) -> tuple[float, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """An adapter GGUF → (alpha, {GGUF name of the base weight: (A [r, in], B [out, r])}), fp32 copies."""
    reader = gguf.GGUFReader(str(path))
    field = reader.get_field(gguf.Keys.Adapter.LORA_ALPHA)
    kind = reader.get_field(gguf.Keys.Adapter.TYPE)
    if field is None or kind is None or kind.contents() != "lora":
        raise ValueError(f"{path} is not a LoRA adapter GGUF (no {gguf.Keys.Adapter.LORA_ALPHA})")
    halves: dict[str, dict[str, np.ndarray]] = {}
    for tensor in reader.tensors:
        base, _, half = tensor.name.rpartition(".lora_")
        if half not in ("a", "b") or tensor.tensor_type != gguf.GGMLQuantizationType.F32:
            raise ValueError(f"{path}: {tensor.name} is not an F32 lora_a / lora_b tensor")
        halves.setdefault(base, {})[half] = np.array(tensor.data, np.float32)  # numpy's row-major shape, copied
    broken = [name for name, pair in halves.items() if set(pair) != {"a", "b"}]
    if broken or not halves:
        raise ValueError(f"{path}: half a LoRA pair or none: {broken[:3] or 'no tensors'}")
    return float(field.contents()), {name: (pair["a"], pair["b"]) for name, pair in halves.items()}


def load_lora_gguf(peft_llm, path: str | os.PathLike) -> int:
    """Set the LoRA weights of `peft_llm` from an adapter GGUF written for the same base and rank. → pairs set."""
    import torch

    alpha, pairs = read_lora_gguf(path)
    config = peft_llm.peft_config["default"]
    if alpha != float(config.lora_alpha):
        raise ValueError(f"{path}: LoRA alpha {alpha:g} differs from the model's {config.lora_alpha}")
    params = {name.removeprefix("base_model.model."): p for name, p in peft_llm.named_parameters()}  # as lora_pairs names them
    ours = {gguf_name(peft_llm, hf_name): hf_name for hf_name in lora_pairs(peft_llm)}
    if set(ours) != set(pairs):
        missing, extra = sorted(set(ours) - set(pairs)), sorted(set(pairs) - set(ours))
        raise ValueError(f"{path} does not adapt the model's weights: missing {missing[:3]}, unexpected {extra[:3]}")
    with torch.no_grad():
        for name, hf_name in ours.items():
            module = hf_name.removesuffix(".weight")
            for half, value in zip("AB", pairs[name]):
                param = params[f"{module}.lora_{half}.default.weight"]
                if tuple(param.shape) != value.shape:
                    raise ValueError(f"{path}: {name}.lora_{half.lower()} is {list(value.shape)}, the model's "
                                     f"{list(param.shape)} (another rank?)")
                param.copy_(torch.from_numpy(value))
    return len(ours)
