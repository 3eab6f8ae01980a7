#!/usr/bin/env bash
# The device check in one go on a CUDA machine: python -m benchmarks.device over the shipped default, then the
# GPU-marked tests. The table and JSON go to $OUT/device (a lent machine brings $OUT back) or results/device.
#
#   bash benchmarks/device_run.sh          # check (about 2 minutes on a warm machine; capped at 8)
#   bash benchmarks/device_run.sh stash    # keep the wheel parts this call carried, for the next call's check
#
# Carried beside the repository in .device/ (listed in .git/info/exclude, so it travels only when named in carry):
#   .device/inputs.npz   the clips' encoder inputs, for a machine without PyAV (--save-inputs on any machine that has it)
#   .device/parts/       wheels, whole or split by `python -m benchmarks.device pack-wheel` (onnxruntime-gpu, ...)
# Parts stashed by earlier calls on the same (still warm) machine are used too: a wheel larger than one call can
# carry arrives over several calls.
set -uo pipefail
cd "$(dirname "$0")/.."
store=/tmp/affectgpt-wheel-parts
py=$(command -v python3 || command -v python)
mkdir -p "$store"
if [ -d .device/parts ]; then cp .device/parts/* "$store"/ 2>/dev/null; fi
if [ "${1:-}" = stash ]; then
    ls -l "$store"
    exit 0
fi
out="${OUT:-results}/device"
mkdir -p "$out"
args=(--bundle runtime/demo/bundle --out "$out" --windows "${WINDOWS:-20}" --clips "${CLIPS:-3}")
if [ -n "$(ls -A "$store")" ]; then args+=(--wheel-parts "$store"); fi
if [ -f .device/inputs.npz ]; then args+=(--inputs .device/inputs.npz); fi
export PYTHONUNBUFFERED=1
nvidia-smi -L 2>&1 | tee "$out/gpu.txt"
timeout 480 "$py" -m benchmarks.device "${args[@]}" 2>&1 | tee "$out/device.log"
status=${PIPESTATUS[0]}
timeout 60 "$py" -m pytest -q -p no:cacheprovider -m gpu tests/benchmarks/test_device.py 2>&1 | tail -n 15 | tee "$out/gpu-tests.log"
exit "$status"
