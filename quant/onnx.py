"""Encoder and fusion precisions: fp16, INT8 dynamic and INT8 static (calibrated on real clips).

Both INT8 variants start from the same prepared graph: constants folded (HuBERT's positional convolution computes
its weight by weight norm at run time, which the quantizer cannot take), shapes inferred, and each attention folded
into one MultiHeadAttention node (`quant.attention`). Then
- `int8-dynamic` quantizes the matrix products, each activation scaled per call: no calibration needed;
- `int8-static` also runs the convolutions in 8 bits (QDQ, ranges calibrated on clips through the runtime's own
  preprocessing; ONNX Runtime has no dynamic convolution worth having: ConvInteger was slower than fp32 on HuBERT
  and lost 4 % cosine). Convolutions that read the raw input (samples, pixels) stay fp32: an 8-bit grid on raw
  audio cost HuBERT's features 4 % cosine, and the layer is cheap. Its matrix products stay dynamic: static QDQ
  matrix products ran at half the speed of dynamic ones on the CPU (QLinearMatMul u8·u8).

INT8 weights follow the CPU that quantizes (quantize where you deploy, or pass `signed=`): with VNNI
(AVX512-VNNI, AVX-VNNI, AMX, Arm dot product) signed per-channel weights, which its s8 kernels multiply exactly;
without it unsigned per-tensor weights, since signed INT8 saturates in the u8s8 kernels of plain AVX2 (it cost
the fusion ~40 % error where unsigned weights cost 2–4 %).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from quant.cpu import has_vnni
from quant.errors import QuantError
from runtime.atomic import atomic_file
from runtime.encode import encode, encoder_inputs
from runtime.encoders import Encoders
from runtime.manifest import (
    AUDIO,
    ENCODER_ROLES,
    FUSION,
    VISION,
    file_entry,
    read_manifest,
    variant_role,
    write_manifest,
)
from runtime.media import read_clip_for
from runtime.media_files import media_files

log = logging.getLogger(__name__)
ONNX_VARIANTS = ("fp16", "int8-dynamic", "int8-static")
MATRIX_OPS = ["MatMul", "Gemm"]
# Ops that only move or reshape values: a convolution reached from the graph's input through these reads raw input.
SHAPE_OPS = {"Unsqueeze", "Squeeze", "Reshape", "Cast", "Transpose", "Identity", "Flatten"}


def calibration_inputs(bundle: Path, clips: list[Path]) -> dict[str, list[dict[str, np.ndarray]]]:
    """Per graph, the inputs it sees on real clips — through the runtime's own encode path (faces cropped when
    the bundle says so) and its fp32 graphs."""
    manifest = read_manifest(bundle, verify_hashes=False)
    prep = manifest.preprocessing
    f = lambda role: bundle / manifest.files[role].path
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
        return
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights = QuantType.QInt8 if signed else QuantType.QUInt8
    with tempfile.TemporaryDirectory(dir=tmp.parent) as work:
        prepared = prepare(src, Path(work) / "prepared.onnx")
        if variant == "int8-static":
            convs = Path(work) / "convolutions.onnx"
            quantize_convolutions(prepared, convs, feeds, weights, per_channel=signed)
            prepared = convs
        with _quiet("already quantized"):  # int8-static's convolutions are, on purpose
            quantize_dynamic(str(prepared), str(tmp), weight_type=weights, per_channel=signed,
                             op_types_to_quantize=MATRIX_OPS)


@contextlib.contextmanager
def _quiet(words: str):
    """Drop the root logger's records that contain `words` (onnxruntime.quantization logs through it)."""
    drop = lambda record: words not in record.getMessage()  # noqa: E731
    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def prepare(src: Path, dst: Path) -> Path:
    """`src` with constants folded, shapes inferred and attention folded, written to `dst`."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from quant.attention import fuse_attention

    quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    model = onnx.load(str(dst))
    if fuse_attention(model):
        onnx.save(model, str(dst))
    return dst


def input_convolutions(model) -> list[str]:
    """Names of the convolutions that read the graph's input (through shape-only ops)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    inputs = {i.name for i in model.graph.input}

    def raw(name: str) -> bool:
        while name not in inputs:
            node = producer.get(name)
            if node is None or node.op_type not in SHAPE_OPS:
                return False
            name = node.input[0]
        return True

    return [n.name for n in model.graph.node if n.op_type == "Conv" and raw(n.input[0])]


def quantize_convolutions(src: Path, dst: Path, feeds, weights, per_channel: bool) -> None:
    """Static QDQ on the convolutions that do not read raw input; ranges from `feeds` (MinMax)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(str(src), load_external_data=False)
    skip = input_convolutions(model)
    if not feeds:
        raise QuantError("int8-static needs calibration clips: --clips DIR")
    if not any(n.op_type == "Conv" and n.name not in skip for n in model.graph.node):
        shutil.copyfile(src, dst)
        return
    quantize_static(str(src), str(dst), _Reader(feeds), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=weights, per_channel=per_channel,
                    calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=["Conv"], nodes_to_exclude=skip)


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
