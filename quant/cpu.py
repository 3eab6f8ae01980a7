"""What this CPU offers the quantized kernels: the instruction-set features that decide INT8 / bf16 speed (and,
for INT8, whether signed weights are safe), read from /proc/cpuinfo."""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

REPORTED = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16",
            "amx_int8", "avx512_fp16", "neon", "asimddp", "sve")


@lru_cache(maxsize=1)
def cpu() -> dict:
    """{"model": ..., "flags": set of every flag, "features": the reported ones this CPU has}."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "flags": flags, "features": [f for f in REPORTED if f in flags]}


def has_vnni() -> bool:
    """INT8 dot products in hardware: signed-weight (s8) kernels are exact there; without it ONNX Runtime's u8s8
    path can saturate (AVX2), so weights stay unsigned."""
    return bool({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"} & cpu()["flags"])


def has_bf16() -> bool:
    return bool({"avx512_bf16", "amx_bf16"} & cpu()["flags"])
