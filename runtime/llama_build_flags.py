"""CMake flags for building llama.cpp (llama-cpp-python) for the CPU this runs on, printed for CMAKE_ARGS:

    CMAKE_ARGS="$(python runtime/llama_build_flags.py)" pip install llama-cpp-python

A plain script (no imports from this package: it runs before anything is installed). It names each instruction
set explicitly instead of GGML_NATIVE: AVX-512 with VNNI / BF16 where the CPU has them — prefill 1.3–1.5×
faster than the portable AVX2 build on a 2-core Xeon — and AMX where the CPU has it, with `llama_amx.cmake`
patched into the build: ggml's AMX kernels assume a thread's tile configuration stays loaded, which crashed them
(an illegal instruction) on a 2-core KVM Xeon; patched, its Q8_0 prefill ran 3.3× and decode 1.8× faster there.
Without AVX-512 it is the portable AVX2 build; off x86 it leaves llama.cpp's own defaults. `--cuda` adds the CUDA
backend (Jetson, RTX).
"""

import platform
import sys
from pathlib import Path

BASE = ["-DGGML_NATIVE=OFF", "-DLLAVA_BUILD=OFF"]
X86 = ["-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON"]
OPTIONAL = {"avx512f": "-DGGML_AVX512=ON", "avx512_vnni": "-DGGML_AVX512_VNNI=ON", "avx512_bf16": "-DGGML_AVX512_BF16=ON",
            "avx_vnni": "-DGGML_AVX_VNNI=ON"}
AMX = {"amx_tile": "-DGGML_AMX_TILE=ON", "amx_int8": "-DGGML_AMX_INT8=ON", "amx_bf16": "-DGGML_AMX_BF16=ON"}
AMX_PATCH = Path(__file__).resolve().parent / "llama_amx.cmake"


def flags(cpu_flags: set[str], machine: str, cuda: bool = False) -> list[str]:
    out = list(BASE)
    if machine in ("x86_64", "amd64", "AMD64"):
        out += X86
        if "avx512f" in cpu_flags and "avx512bw" in cpu_flags:
            out += [flag for name, flag in OPTIONAL.items() if name in cpu_flags]
            if {"amx_tile", "amx_int8", "avx512_vnni"} <= cpu_flags:  # ggml's AMX kernels need VNNI beside
                out += [flag for name, flag in AMX.items() if name in cpu_flags]
                out.append(f"-DCMAKE_PROJECT_INCLUDE={AMX_PATCH}")
        elif "avx_vnni" in cpu_flags:
            out.append(OPTIONAL["avx_vnni"])
    if cuda:
        out.append("-DGGML_CUDA=on")
    return out


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


if __name__ == "__main__":
    print(" ".join(flags(cpu_flags(), platform.machine(), cuda="--cuda" in sys.argv)))
