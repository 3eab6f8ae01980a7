"""Model → bundle: three ONNX graphs, the LoRA-merged LLM as GGUF, manifest.json — each checked on the way.

The bundle is built in a folder beside the target and renamed into place only when every parity check
passed, so a failed export never leaves a half-written or unchecked bundle.
"""

from __future__ import annotations

import copy
import logging
import platform
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from export.encoders import AUDIO_GRAPH, FUSION_GRAPH, VISION_GRAPH, export_checked
from export.errors import ExportError
from export.gguf_llm import LazyTensor, write_gguf, write_gguf_tensors
from export.gguf_lora import write_lora_gguf
from runtime import prompt as prompts
from runtime.atomic import atomic_dir
from runtime.llm import LLM
from runtime.manifest import (AUDIO, FUSION, LLM as LLM_ROLE, MANIFEST_NAME, VISION, Dims, Manifest, PromptSpec,
                              file_entry, write_manifest)
from train.model import AffectGPT
from train.tokenizer import encode_text

log = logging.getLogger(__name__)

FEATURE_TOLERANCE = 1e-4  # ONNX vs PyTorch, max |Δ| on encoder / fusion outputs
LOGIT_TOLERANCE = {"f32": 1e-2, "f16": 5e-2}  # GGUF vs HF, max |Δlogit| per unit of logit std
# A LoRA adapter on a quantized base (HF computes with the base's weights dequantized to fp32, llama.cpp with the
# quantized weights and 8-bit activations): measured 0.4–0.7 logit std at the worst position of the check prompt,
# top-1 agreement 0.93–1.0 (a random prompt has near-ties; the answers of real windows agree token for token).
ADAPTER_TOLERANCE = {"max_abs_logit_diff_per_std": 1.0, "top1_agreement": 0.85}
ADAPTER_FILE = "llm-lora.gguf"
LLM_FILES = {"f32": "llm-f32.gguf", "f16": "llm-f16.gguf"}


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("affectgpt-edge", "torch", "transformers", "peft", "onnx", "onnxruntime", "gguf", "llama-cpp-python"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def export_encoders(model: AffectGPT, out_dir: Path, seed: int = 0) -> dict[str, float]:
    """vision.onnx, audio.onnx, fusion.onnx; → {file: max |Δ| vs PyTorch} on fresh random inputs."""
    prep = model.cfg.preprocessing
    g = torch.Generator().manual_seed(seed)
    frames = lambda n: torch.randn(n, 3, prep.image_size, prep.image_size, generator=g)  # noqa: E731
    clips = lambda n: torch.randn(n, prep.clip_samples, generator=g)  # noqa: E731
    dv, da = model.vision.dim, model.audio.dim
    t, k = prep.num_frames, prep.num_clips
    parity = {}
    parity[VISION_GRAPH.file] = export_checked(model.vision, VISION_GRAPH, (frames(2),), (frames(t),), out_dir,
                                               FEATURE_TOLERANCE)
    parity[AUDIO_GRAPH.file] = export_checked(model.audio, AUDIO_GRAPH, (clips(2),), (clips(k),), out_dir,
                                              FEATURE_TOLERANCE)
    # fusion inputs at the scale of real features, so the tolerance means the same thing
    with torch.no_grad():
        face = model.vision(frames(3 * t)).view(3, t, dv)
        audio = model.audio(clips(3 * k)).view(3, k, da)
    parity[FUSION_GRAPH.file] = export_checked(model.fusion, FUSION_GRAPH, (face[:2], audio[:2]), (face[2:], audio[2:]),
                                               out_dir, FEATURE_TOLERANCE)
    return parity


def merged_llm(model: AffectGPT, inplace: bool = False):
    """The LLM with LoRA folded into its weights, fp32, eval mode."""
    llm = model.llm if inplace else copy.deepcopy(model.llm)
    if hasattr(llm, "merge_and_unload"):  # a peft model: fold LoRA in
        llm = llm.merge_and_unload()
    return llm.float().eval()


def check_tokenizer(model: AffectGPT, llm: LLM) -> None:
    """llama.cpp must split the prompt text exactly as training did, or the answers drift."""
    texts = [s for s in prompts.segments(model.cfg.template, "I can't believe it... 42 times?!", model.cfg.question)
             if s and not prompts.is_placeholder(s)]
    texts += [prompts.ov_answer(["happy", "surprised"]) + prompts.STOP_TEXT, "  Ünïcode — 表情\n\tline"]
    for text in texts:
        want, got = encode_text(model.tokenizer, text), llm.tokenize(text)
        if want != got:
            raise ExportError(f"GGUF tokenizer differs from the training tokenizer on {text[:40]!r}: {got[:8]} vs {want[:8]}")


def check_llm_parity(model: AffectGPT, hf_llm, gguf_path: Path, file_type: str, seed: int = 0,
                     adapter: Path | None = None) -> dict[str, float]:
    """HF vs GGUF logits on a prompt with embedding rows at the placeholders. Fails past the tolerance. With
    `adapter`, gguf_path is the base model and the adapter is applied on top, as the runtime does."""
    g = torch.Generator().manual_seed(seed)
    scale = float(hf_llm.get_input_embeddings().weight.std())
    fused = torch.randn(sum(model.fusion.rows), model.llm_width, generator=g) * scale
    ids = model.prompt_ids("I can't believe you did that again.")
    with torch.no_grad():
        embeds = model.embed(ids, fused)
        expected = hf_llm(inputs_embeds=embeds[None]).logits[0].numpy()
    llm = LLM(gguf_path, n_ctx=max(256, len(ids) + 8), flash_attn=False, kv_f32=True, n_batch=64, adapter=adapter)
    try:
        check_tokenizer(model, llm)
        got = llm.feed(model.llm_pieces(ids, fused), all_logits=True)
    finally:
        llm.close()
    diff = float(np.abs(got - expected).max())
    top1 = float((got.argmax(-1) == expected.argmax(-1)).mean())
    std = float(expected.std())
    log.info("%s: max |Δlogit| = %.2e (logit std %.2f), top-1 agreement %.3f", (adapter or gguf_path).name, diff, std, top1)
    if adapter is not None:
        if diff > ADAPTER_TOLERANCE["max_abs_logit_diff_per_std"] * std or top1 < ADAPTER_TOLERANCE["top1_agreement"]:
            raise ExportError(f"{adapter.name} on {gguf_path.name}: logits differ from PyTorch by {diff:.3e} (logit std "
                              f"{std:.2f}), top-1 agreement {top1:.3f}")
    elif not diff <= LOGIT_TOLERANCE[file_type] * max(1.0, std):
        raise ExportError(f"{gguf_path.name}: GGUF logits differ from PyTorch by {diff:.3e} (logit std {std:.2f})")
    return {"max_abs_logit_diff": diff, "logit_std": std, "top1_agreement": top1}


def _with_external_data(folder: Path, files: dict) -> dict:
    """Every other file the exporters left (ONNX external data of graphs over 2 GB) listed and hashed too."""
    listed = {entry.path for entry in files.values()}
    for extra in sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in listed and p.name[0] != "."):
        files[f"data:{extra}"] = file_entry(folder, extra, "external-data")
    return files


def replaceable(out: str | Path) -> Path:
    """`out` as a Path, if it is empty, absent or a bundle (which an export replaces); else refuse."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise ExportError(f"{out} exists and is not a bundle: refusing to replace it")
    return out


def export_bundle(model: AffectGPT, out: str | Path, llm_type: str = "f16", name: str | None = None,
                  seed: int = 0, inplace: bool = False, random_weights: bool = False) -> Manifest:
    """Write a checked bundle to `out` (replacing a bundle there). → its manifest. `random_weights` marks a
    model whose fusion and LoRA were never trained (latency and pipeline tests): the manifest says so."""
    out = replaceable(out)
    if llm_type not in LLM_FILES:
        raise ExportError(f"unknown LLM type {llm_type!r}; choose from {', '.join(LLM_FILES)}")
    model.eval()
    with atomic_dir(out) as tmp:
        log.info("exporting encoders and fusion to ONNX")
        onnx_parity = export_encoders(model, tmp, seed)
        base_model = None
        if model.cfg.llm_base:  # the base stays in its package; the bundle carries the adapter
            from runtime.base_models import base_model as known_base, resolve

            log.info("writing the LoRA adapter as GGUF (base model %s from its package)", model.cfg.llm_base)
            hf_llm = model.llm.eval()
            gguf_path = tmp / ADAPTER_FILE
            adapter_info = write_lora_gguf(hf_llm, gguf_path)
            llm_parity = check_llm_parity(model, hf_llm, resolve(model.cfg.llm_base), llm_type, seed, adapter=gguf_path)
            llm_parity.update({f"adapter_{k}": v for k, v in adapter_info.items()})
            base_model = {"key": model.cfg.llm_base, "sha256": known_base(model.cfg.llm_base).sha256}
            llm_kind = f"LoRA r{adapter_info['rank']} F32"
        else:
            log.info("writing the LoRA-merged LLM as GGUF %s", llm_type.upper())
            hf_llm = merged_llm(model, inplace)
            gguf_path = tmp / LLM_FILES[llm_type]
            write_gguf(hf_llm, model.tokenizer, gguf_path, llm_type, model.bos_id, model.eos_id)
            llm_parity = check_llm_parity(model, hf_llm, gguf_path, llm_type, seed)
            llm_kind = llm_type.upper()
        manifest = _manifest(model, tmp, name, gguf_path, llm_kind, random_weights, base_model,
                             {**{f"{k}.max_abs_diff": v for k, v in onnx_parity.items()},
                              **{f"{gguf_path.name}.{k}": v for k, v in llm_parity.items()}})
        write_manifest(tmp, manifest)
    return manifest


def _manifest(model: AffectGPT, folder: Path, name: str | None, gguf_path: Path, llm_kind: str, random_weights: bool,
              base_model: dict | None, parity: dict) -> Manifest:
    return Manifest(
        name=name or f"affectgpt-{model.cfg.preset}",
        dims=Dims(vision_dim=model.vision.dim, audio_dim=model.audio.dim, llm_width=model.llm_width,
                  vocab_size=int(model.llm.get_input_embeddings().weight.shape[0])),
        preprocessing=model.cfg.preprocessing,
        prompt=PromptSpec(template=model.cfg.template, question=model.cfg.question, bos_token=model.bos_token,
                          eos_token=model.eos_token, bos_id=model.bos_id, eos_id=model.eos_id,
                          inference_bos=model.cfg.inference_bos, placeholder_rows=tuple(model.fusion.rows),
                          placeholders=model.placeholders),
        files=_with_external_data(folder, {
            VISION: file_entry(folder, VISION_GRAPH.file, "fp32"),
            AUDIO: file_entry(folder, AUDIO_GRAPH.file, "fp32"),
            FUSION: file_entry(folder, FUSION_GRAPH.file, "fp32"),
            LLM_ROLE: file_entry(folder, gguf_path.name, llm_kind),
        }),
        versions=_versions(),
        weights="random" if random_weights else "trained",
        base_model=base_model,
        parity=parity,
    )


def export_bundle_streamed(model: AffectGPT, tensors: list[LazyTensor], out: str | Path, name: str | None = None,
                           seed: int = 0, random_weights: bool = False, progress=None) -> Manifest:
    """A bundle whose LLM is never in memory: `model` holds the encoders and the fusion (checked as export_bundle
    checks them) and its LLM only on the meta device; the F16 GGUF is written tensor by tensor from `tensors`
    (export/lazy_llm.py: the LoRA merged into each weight as it is made). The LLM's logits are not compared with
    PyTorch's (that would need the model in memory); its tokenizer is the model's, written as export_bundle writes it."""
    out = replaceable(out)
    model.eval()
    with atomic_dir(out) as tmp:
        log.info("exporting encoders and fusion to ONNX")
        onnx_parity = export_encoders(model, tmp, seed)
        gguf_path = tmp / LLM_FILES["f16"]
        log.info("writing the LoRA-merged LLM as GGUF F16, tensor by tensor")
        write_gguf_tensors(model.llm.config, tensors, model.tokenizer, gguf_path, "f16", model.bos_id, model.eos_id,
                           progress=progress)
        manifest = _manifest(model, tmp, name, gguf_path, "F16", random_weights, None,
                             {f"{k}.max_abs_diff": v for k, v in onnx_parity.items()})
        write_manifest(tmp, manifest)
    return manifest
