"""Vision encoder, audio encoder and pre-fusion → ONNX (torch.onnx, dynamo exporter), checked against PyTorch.

The HF encoders go through torch.onnx directly rather than optimum-onnx: that exporter pins transformers
below 4.58, and our three graphs are not stock HF heads anyway (projected CLIP embedding, HuBERT's last-4
mean, the AffectGPT fusion).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from export.errors import ExportError

OPSET = 20
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnnxGraph:
    """One ONNX file of the bundle: its inputs and outputs, and which axes stay dynamic."""

    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic: tuple[dict[int, str], ...]  # per input: axis → name


VISION_GRAPH = OnnxGraph("vision.onnx", ("pixel_values",), ("features",), ({0: "frames"},))
AUDIO_GRAPH = OnnxGraph("audio.onnx", ("clips",), ("features",), ({0: "clips"},))
FUSION_GRAPH = OnnxGraph("fusion.onnx", ("face", "audio"), ("fused",), ({0: "batch"}, {0: "batch"}))


def export_graph(module: torch.nn.Module, graph: OnnxGraph, example: tuple[torch.Tensor, ...], out_dir: Path) -> Path:
    """Export `module` with `example` inputs (batch ≥ 2: the exporter would fix a batch of 1)."""
    module.eval()
    dims = {}
    dynamic_shapes = tuple(
        {axis: dims.setdefault(name, torch.export.Dim(name, min=1, max=4096)) for axis, name in spec.items()}
        for spec in graph.dynamic
    )
    path = Path(out_dir) / graph.file
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, example, dynamo=True, opset_version=OPSET, input_names=list(graph.inputs),
            output_names=list(graph.outputs), dynamic_shapes=dynamic_shapes, verbose=False,
        )
    if program is None:
        raise ExportError(f"torch.onnx produced no program for {graph.file}")
    program.save(str(path), external_data=os.environ.get("AFFECTGPT_ONNX_EXTERNAL") == "1")
    return path


def max_abs_diff(module: torch.nn.Module, path: Path, inputs: tuple[torch.Tensor, ...], names) -> tuple[float, float]:
    """(max |ONNX Runtime − PyTorch|, max |PyTorch|) over the outputs for `inputs` (not the export example)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = module.eval()(*inputs).numpy()
    got = session.run(None, {name: x.numpy() for name, x in zip(names, inputs)})[0]
    if got.shape != expected.shape:
        raise ExportError(f"{path.name}: ONNX output shape {got.shape} differs from PyTorch {expected.shape}")
    return float(np.abs(got - expected).max()), float(np.abs(expected).max())


def export_checked(module, graph: OnnxGraph, example, check_inputs, out_dir: Path, tolerance: float) -> float:
    """Export, then compare on other inputs (another batch size too); fail loudly past `tolerance`, which is
    absolute for outputs up to 1 in size and relative to the largest output beyond (float32 rounding grows
    with the values: the fusion's unnormalised sums reach the hundreds). → max |Δ|"""
    path = export_graph(module, graph, example, out_dir)
    diff, scale = max_abs_diff(module, path, check_inputs, graph.inputs)
    log.info("%s: max |Δ| vs PyTorch = %.2e (largest output %.2e)", graph.file, diff, scale)
    if not diff <= tolerance * max(1.0, scale):  # also catches NaN
        raise ExportError(f"{graph.file}: ONNX differs from PyTorch by {diff:.3e} on outputs up to {scale:.3g} "
                          f"(tolerance {tolerance:.0e} × max(1, {scale:.3g}))")
    return diff
