# Included after each project() of the llama-cpp-python build (CMAKE_PROJECT_INCLUDE; runtime/llama_build_flags.py
# adds it, with the AMX flags, on CPUs that have AMX).
#
# ggml's AMX kernels load their tile configuration once per thread (a thread_local flag) and assume it stays loaded.
# It does not on every machine: on a 2-core KVM Xeon the next tile load of a prefill was an illegal instruction
# (SIGILL in tinygemm_kernel_amx), which is how llama.cpp's AMX build "crashes" on some machines. This makes the
# check the one MLAS makes before its AMX kernels: read the thread's current configuration and load ggml's if it
# differs (a few cycles per matrix product). A source this patch does not know is built without AMX, never unpatched.
#
# Test alone: cmake -DLLAMA_AMX_SOURCE=path/to/mmq.cpp -P runtime/llama_amx.cmake
include_guard(GLOBAL)

if(NOT DEFINED LLAMA_AMX_SOURCE)
    set(LLAMA_AMX_SOURCE "${CMAKE_SOURCE_DIR}/vendor/llama.cpp/ggml/src/ggml-cpu/amx/mmq.cpp")
endif()

set(_loaded_once [=[
    static thread_local bool done = false;

    if (done) {
        return;
    }

    alignas(64) tile_config_t tc = {};]=])
set(_check_current [=[
    // patched at build time (runtime/llama_amx.cmake): the configuration can be gone or another one since this
    // thread loaded it; compare with the current one, as MLAS does
    alignas(64) tile_config_t current = {};
    _tile_storeconfig(&current);

    alignas(64) tile_config_t tc = {};]=])
set(_set_flag [=[
    _tile_loadconfig(&tc);
    done = true;
}]=])
set(_load_if_differs [=[
    if (__builtin_memcmp(&current, &tc, sizeof(tc)) != 0) {
        _tile_loadconfig(&tc);
    }
}]=])

function(_llama_amx_off why)
    message(WARNING "llama.cpp is built without AMX: ${why}")
    foreach(option GGML_AMX_TILE GGML_AMX_INT8 GGML_AMX_BF16)
        set(${option} OFF CACHE BOOL "" FORCE)
    endforeach()
endfunction()

if(NOT EXISTS "${LLAMA_AMX_SOURCE}")
    _llama_amx_off("${LLAMA_AMX_SOURCE} not found")
    return()
endif()
file(READ "${LLAMA_AMX_SOURCE}" _source)
string(FIND "${_source}" "_tile_storeconfig(&current);" _patched)
if(_patched GREATER -1)
    message(STATUS "ggml AMX tile configuration: already checked per call")
    return()
endif()
string(FIND "${_source}" "${_loaded_once}" _at_flag)
string(FIND "${_source}" "${_set_flag}" _at_set)
if(_at_flag EQUAL -1 OR _at_set EQUAL -1)
    _llama_amx_off("its tile set-up (ggml_tile_config_init in ${LLAMA_AMX_SOURCE}) is not the one this patch knows")
    return()
endif()
string(REPLACE "${_loaded_once}" "${_check_current}" _source "${_source}")
string(REPLACE "${_set_flag}" "${_load_if_differs}" _source "${_source}")
file(WRITE "${LLAMA_AMX_SOURCE}" "${_source}")
message(STATUS "ggml AMX tile configuration: patched to be checked per call")
