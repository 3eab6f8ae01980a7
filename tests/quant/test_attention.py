"""The prepared INT8 graph: attention folded into MultiHeadAttention (same outputs), convolutions on raw input
left alone, and int8-static's convolutions really in 8 bits."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from quant.attention import fuse_attention
from quant.onnx import convert, input_convolutions, prepare
from runtime.manifest import read_manifest

LAYERS = {"vision": 2, "audio": 4}  # tiny(): CLIP and HuBERT layers


def _run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _input(role):
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 3, 64, 64) if role == "vision" else (3, 32000)).astype(np.float32)


@pytest.mark.parametrize("role", ["vision", "audio"])
def test_every_attention_is_folded_and_answers_the_same(bundle_f32, tmp_path, role):
    src = bundle_f32 / read_manifest(bundle_f32).files[role].path
    prepared = onnx.load(str(prepare(src, tmp_path / "prepared.onnx")))
    ops = [n.op_type for n in prepared.graph.node]
    assert ops.count("MultiHeadAttention") == LAYERS[role] and "Softmax" not in ops
    before = [n.op_type for n in onnx.load(str(src)).graph.node].count("Transpose")
    assert ops.count("Transpose") <= before - 4 * LAYERS[role]  # the heads' split and merge are gone
    x = _input(role)
    np.testing.assert_allclose(_run(tmp_path / "prepared.onnx", x), _run(src, x), atol=1e-4, rtol=1e-4)


def test_a_block_that_differs_is_left_alone(bundle_f32, tmp_path):
    src = bundle_f32 / read_manifest(bundle_f32).files["vision"].path
    model = onnx.load(str(src))
    for node in model.graph.node:  # one attention's scores no longer scaled by a constant
        if node.op_type == "Softmax":
            scores = next(n for n in model.graph.node if node.input[0] in n.output)
            q_scale = next(n for n in model.graph.node if scores.input[0] in n.output)
            q_scale.op_type = "Add"
            break
    before = len(model.graph.node)
    assert fuse_attention(model) == LAYERS["vision"] - 1
    assert len(model.graph.node) < before and [n.op_type for n in model.graph.node].count("Softmax") == 1


def test_only_convolutions_on_raw_input_are_kept_in_fp32(bundle_f32, media_dir, tmp_path):
    from train.synth import write_clip

    from quant.onnx import calibration_inputs

    manifest = read_manifest(bundle_f32)
    src = bundle_f32 / manifest.files["audio"].path
    raw = input_convolutions(onnx.load(str(src)))
    convs = [n.name for n in onnx.load(str(src)).graph.node if n.op_type == "Conv"]
    assert len(raw) == 1 and raw[0] == convs[0] and len(convs) == 8  # 7 feature layers + positional
    clip = write_clip(tmp_path / "c.mp4", seconds=3.0, seed=5)
    feeds = calibration_inputs(bundle_f32, [clip])["audio"]
    convert(src, tmp_path / "static.onnx", "int8-static", feeds)
    convert(src, tmp_path / "dynamic.onnx", "int8-dynamic")
    static, dynamic = onnx.load(str(tmp_path / "static.onnx")), onnx.load(str(tmp_path / "dynamic.onnx"))
    producer = {o: n for n in static.graph.node for o in n.output}
    quantized = [n for n in static.graph.node if n.op_type == "Conv" and producer.get(n.input[0]) is not None
                 and producer[n.input[0]].op_type == "DequantizeLinear"]
    assert len(quantized) == len(convs) - 1  # the positional convolution too: its weight norm was folded
    assert not any(n.op_type == "DequantizeLinear" for n in dynamic.graph.node if n.output[0] in
                   {c.input[0] for c in dynamic.graph.node if c.op_type == "Conv"})
    x = _input("audio")
    ref = _run(src, x).ravel()
    for path in (tmp_path / "static.onnx", tmp_path / "dynamic.onnx"):
        got = _run(path, x).ravel()
        assert got @ ref / np.linalg.norm(got) / np.linalg.norm(ref) > 0.98, path.name
