"""The GGUF ladder: quantized copies of a bundle's LLM through llama.cpp's own quantizer (in-process)."""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path

import llama_cpp

from quant.errors import QuantError
from runtime.atomic import atomic_file
from runtime.manifest import LLM, file_entry, read_manifest, variant_role, write_manifest

log = logging.getLogger(__name__)

# name → llama.cpp file type. K-quants work on 256-wide super-blocks.
GGUF_TYPES = {
    "Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
    "Q6_K": llama_cpp.LLAMA_FTYPE_MOSTLY_Q6_K,
    "Q5_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_K_M,
    "Q5_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_0,
    "Q4_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
    "Q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
}
K_BLOCK = 256


def row_lengths(gguf_path: Path) -> dict[str, int]:
    """Row length (the innermost dimension) of every 2-D tensor of a GGUF file."""
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_path))
    return {t.name: int(t.shape[0]) for t in reader.tensors if len(t.shape) == 2}


def fallback_tensors(gguf_path: Path, type_name: str) -> list[str]:
    """Tensors a K-quant cannot take (rows not a multiple of 256): llama.cpp quietly uses q5_0 / q8_0 there."""
    if "_K" not in type_name:
        return []
    return sorted(name for name, n in row_lengths(gguf_path).items() if n % K_BLOCK)


def quantize_gguf(bundle: str | os.PathLike, types: list[str], threads: int | None = None) -> dict[str, dict]:
    """Write llm@<type> GGUFs into the bundle from its exported GGUF; update the manifest. → per type info."""
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    if manifest.base_model:
        raise QuantError(f"this bundle's LLM is a LoRA adapter on the base model {manifest.base_model['key']}, which "
                         "comes quantized from its package: there is no GGUF here to quantize")
    source = bundle / manifest.files[LLM].path
    results = {}
    for name in types:
        key = name.upper()
        if key not in GGUF_TYPES:
            raise QuantError(f"unknown GGUF type {name!r}; choose from {', '.join(GGUF_TYPES)}")
        fallback = fallback_tensors(source, key)
        if fallback:
            log.warning("%s: %d tensors have rows that are not a multiple of %d and fall back to another type: %s",
                        key, len(fallback), K_BLOCK, ", ".join(fallback[:4]) + (" ..." if len(fallback) > 4 else ""))
        out = bundle / f"llm-{key.lower()}.gguf"
        from runtime.llm import quiet_llama_logs

        quiet_llama_logs()
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = GGUF_TYPES[key]
        params.nthread = threads or os.cpu_count() or 1
        with atomic_file(out) as tmp:
            rc = llama_cpp.llama_model_quantize(os.fsencode(source), os.fsencode(tmp), ctypes.byref(params))
            if rc != 0 or not tmp.stat().st_size:
                raise QuantError(f"llama.cpp failed to quantize {source.name} to {key} (code {rc})")
        manifest.files[variant_role(LLM, key.lower())] = file_entry(bundle, out.name, key)
        results[key] = {"file": out.name, "bytes": out.stat().st_size, "fallback_tensors": fallback}
    write_manifest(bundle, manifest)
    return results
