"""The llama.cpp build flags per CPU, and the AMX patch applied to ggml's source at build time."""

import shutil
import subprocess
from pathlib import Path

import pytest

from runtime.llama_build_flags import AMX_PATCH, flags

AVX512 = {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni"}
AMX = {"amx_tile", "amx_int8", "amx_bf16"}

# ggml_tile_config_init as llama-cpp-python 0.3.36 vendors it (ggml/src/ggml-cpu/amx/mmq.cpp, MIT), with what the
# function needs to compile on its own
GGML_TILE_CONFIG = """#include <immintrin.h>
#include <cstdint>

struct tile_config_t{
    uint8_t palette_id = 0;
    uint8_t start_row = 0;
    uint8_t reserved_0[14] = {0};
    uint16_t colsb[16] = {0};
    uint8_t rows[16] = {0};
};

inline void ggml_tile_config_init(void) {
    static thread_local bool done = false;

    if (done) {
        return;
    }

    alignas(64) tile_config_t tc = {};
    tc.palette_id = 1;
    tc.start_row = 0;
    tc.rows[0] = 8;   tc.colsb[0] = 64;

    _tile_loadconfig(&tc);
    done = true;
}

void configure() { ggml_tile_config_init(); }
"""


def test_amx_cpus_build_amx_with_the_patch():
    out = flags(AVX512 | AMX, "x86_64")
    assert {"-DGGML_AMX_TILE=ON", "-DGGML_AMX_INT8=ON", "-DGGML_AMX_BF16=ON"} <= set(out)
    assert f"-DCMAKE_PROJECT_INCLUDE={AMX_PATCH}" in out and AMX_PATCH.is_file()


@pytest.mark.parametrize("cpu", [AVX512, {"avx2", "fma", "f16c", "amx_tile", "amx_int8"}, AVX512 - {"avx512_vnni"} | AMX])
def test_no_amx_without_amx_or_its_vnni(cpu):
    """AMX needs the CPU's tiles and, for ggml's kernels, AVX-512 VNNI; without AVX-512 it is the portable build."""
    out = " ".join(flags(cpu, "x86_64"))
    assert "AMX" not in out and "CMAKE_PROJECT_INCLUDE" not in out
    assert ("-DGGML_AVX512=ON" in out) == ("avx512f" in cpu)


def test_arm_keeps_llama_cpp_defaults():
    assert flags(AVX512 | AMX, "aarch64") == ["-DGGML_NATIVE=OFF", "-DLLAVA_BUILD=OFF"]


def _patch(source: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["cmake", f"-DLLAMA_AMX_SOURCE={source}", "-P", str(AMX_PATCH)], capture_output=True,
                          text=True, timeout=60)


needs_cmake = pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")


@needs_cmake
def test_patch_checks_the_current_tile_configuration(tmp_path):
    source = tmp_path / "mmq.cpp"
    source.write_text(GGML_TILE_CONFIG)
    assert _patch(source).returncode == 0
    patched = source.read_text()
    assert "static thread_local bool done" not in patched and "done = true" not in patched
    assert "_tile_storeconfig(&current);" in patched and "_tile_loadconfig(&tc);" in patched
    assert patched.index("_tile_storeconfig(&current);") < patched.index("_tile_loadconfig(&tc);")
    result = _patch(source)  # a second configure of the same tree
    assert result.returncode == 0 and "already" in result.stdout and source.read_text() == patched
    compiler = shutil.which("g++") or shutil.which("clang++")
    if compiler:  # it still compiles as ggml builds it
        built = subprocess.run([compiler, "-std=c++17", "-O2", "-mamx-tile", "-mamx-int8", "-c", str(source), "-o",
                                str(tmp_path / "mmq.o")], capture_output=True, text=True, timeout=120)
        assert built.returncode == 0, built.stderr


@needs_cmake
def test_unknown_source_turns_amx_off_and_is_left_alone(tmp_path):
    source = tmp_path / "mmq.cpp"
    source.write_text(GGML_TILE_CONFIG.replace("static thread_local bool done", "static bool loaded"))
    before = source.read_text()
    result = _patch(source)
    assert result.returncode == 0
    assert "built without AMX" in result.stderr and source.read_text() == before
