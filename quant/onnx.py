"""Encoder and fusion precisions: fp16, INT8 dynamic and INT8 static (QDQ, calibrated on real clips).

INT8 dynamic weights follow the CPU that quantizes (quantize where you deploy, or pass `signed=`): with VNNI
(AVX512-VNNI, AVX-VNNI, AMX, Arm dot product) signed per-channel weights, which its s8 kernels multiply exactly;
without it unsigned per-tensor weights, since signed INT8 saturates in the u8s8 kernels of plain AVX2 (it cost
the fusion ~40 % error where unsigned weights cost 2–4 %). Static QDQ stays unsigned.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from quant.cpu import has_vnni
from quant.errors import QuantError
from runtime.atomic import atomic_file
from runtime.encode import encode, encoder_inputs
from runtime.encoders import Encoders
from runtime.manifest import AUDIO, ENCODER_ROLES, FUSION, VISION, file_entry, read_manifest, variant_role, write_manifest
from runtime.media import read_clip_for
from runtime.media_files import media_files

log = logging.getLogger(__name__)
ONNX_VARIANTS = ("fp16", "int8-dynamic", "int8-static")
# The transformer matrix products carry the cost. Convolutions stay fp32: HuBERT's positional convolution
# computes its weight (weight norm), which ONNX Runtime's quantizer cannot take.
QUANTIZED_OPS = ["MatMul", "Gemm"]
def calibration_inputs(bundle: Path, clips: list[Path]) -> dict[str, list[dict[str, np.ndarray]]]:
    """Per graph, the inputs it sees on real clips — through the runtime's own encode path (faces cropped when
    the bundle says so) and its fp32 graphs."""
    manifest = read_manifest(bundle, verify_hashes=False)
    prep = manifest.preprocessing
    f = lambda role: bundle / manifest.files[role].path  # noqa: E731
    enc = Encoders(f(VISION), f(AUDIO), f(FUSION))
    feeds = {VISION: [], AUDIO: [], FUSION: []}
    for path in clips:
        clip = read_clip_for(path, prep)
        inputs = encoder_inputs(clip.frames, clip.waveform, prep)
        features = encode(enc, inputs)
        feeds[VISION].append({enc.vision.inputs[0]: inputs.pixels})
        feeds[AUDIO].append({enc.audio.inputs[0]: inputs.clips})
        feeds[FUSION].append({enc.fusion.inputs[0]: features.face[None], enc.fusion.inputs[1]: features.audio[None]})
    return feeds


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds):
        self.feeds = iter(feeds)

    def get_next(self):
        return next(self.feeds, None)


def convert(src: Path, dst: Path, variant: str, feeds=None, signed: bool | None = None) -> None:
    if variant not in ONNX_VARIANTS:
        raise QuantError(f"unknown ONNX variant {variant!r}; choose from {', '.join(ONNX_VARIANTS)}")
    with atomic_file(dst) as tmp:
        _convert(src, tmp, variant, feeds, has_vnni() if signed is None else signed)


def _convert(src: Path, tmp: Path, variant: str, feeds, signed: bool) -> None:
    if variant == "fp16":
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)  # fp32 in / out, fp16 inside
        onnx.save(model, str(tmp))
    elif variant == "int8-dynamic":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8 if signed else QuantType.QUInt8,
                         per_channel=signed, op_types_to_quantize=QUANTIZED_OPS)
    elif variant == "int8-static":
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        quantize_static(str(src), str(tmp), _Reader(feeds), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8,
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=QUANTIZED_OPS)


def quantize_onnx(bundle: str | os.PathLike, variants: list[str], clips_dir: str | None = None) -> dict[str, dict]:
    """Write vision / audio / fusion in each variant into the bundle; update the manifest. → sizes per file."""
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    feeds = None
    if "int8-static" in variants:
        if not clips_dir:
            raise QuantError("int8-static needs calibration clips: --clips DIR")
        feeds = calibration_inputs(bundle, media_files(clips_dir))
    results = {}
    for variant in variants:
        for role in ENCODER_ROLES:
            src = bundle / manifest.files[role].path
            dst = bundle / f"{role}.{variant}.onnx"
            log.info("%s → %s", src.name, dst.name)
            convert(src, dst, variant, feeds[role] if feeds else None)
            manifest.files[variant_role(role, variant)] = file_entry(bundle, dst.name, variant)
            results[dst.name] = dst.stat().st_size
    write_manifest(bundle, manifest)
    return results
