"""Read a module's weights back out of an ONNX graph that was exported from a module of the same structure.

The exporter keeps some parameter names and turns others into anonymous, transposed initializers (a Linear's
weight feeds a MatMul as `val_96`, [in, out]). To learn where each parameter went, the module is exported once more
with every parameter filled with its own random values: each parameter is then found among the new graph's
initializers by its values, up to a permutation of its axes and a reshape. The same exporter names the same
initializers the same way, so the map read off the fresh graph applies to the bundle's graph.
"""

from __future__ import annotations

import copy
import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from export.encoders import OnnxGraph, export_graph
from export.errors import ExportError


@dataclass(frozen=True)
class Placement:
    """Where a parameter sits in the graph: initializer `name` = parameter.permute(axes).reshape(its shape)."""

    name: str
    axes: tuple[int, ...]


def _initializers(path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path), load_external_data=True)
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def _find(value: np.ndarray, initializers: dict[str, np.ndarray], by_values: dict) -> Placement | None:
    for name in by_values.get((value.size, np.sort(value, axis=None).tobytes()), ()):
        target = initializers[name]
        for axes in itertools.permutations(range(value.ndim)):
            if np.array_equal(np.transpose(value, axes).reshape(target.shape), target):
                return Placement(name, axes)
    return None


def parameter_placements(module: torch.nn.Module, graph: OnnxGraph, example: tuple) -> tuple[dict, dict]:
    """→ ({parameter: Placement}, {initializer that holds no parameter: its value}) for `module` exported as
    `graph`. Parameters the graph does not use (HuBERT's training-only mask embedding) are left out."""
    marked = copy.deepcopy(module).eval()
    g = torch.Generator().manual_seed(20261206)
    with torch.no_grad():
        for param in marked.parameters():
            param.copy_(torch.randn(param.shape, generator=g))
    with tempfile.TemporaryDirectory() as tmp:
        initializers = _initializers(export_graph(marked, graph, example, Path(tmp)))
    by_values: dict = {}
    for name, value in initializers.items():
        by_values.setdefault((value.size, np.sort(value, axis=None).tobytes()), []).append(name)
    placements = {}
    for name, param in marked.named_parameters():
        found = _find(param.detach().numpy(), initializers, by_values)
        if found is not None:
            placements[name] = found
    held = {p.name for p in placements.values()}
    return placements, {name: value for name, value in initializers.items() if name not in held}


def load_onnx_weights(module: torch.nn.Module, graph: OnnxGraph, example: tuple, path: Path) -> list[str]:
    """Set `module`'s parameters from the ONNX file at `path` (exported from a module like it). Fails unless the
    file's initializers are exactly those the exporter gives this module. → the parameters the graph does not use."""
    placements, constants = parameter_placements(module, graph, example)
    stored = _initializers(path)
    expected = {p.name for p in placements.values()} | set(constants)
    if set(stored) != expected:
        extra, missing = sorted(set(stored) - expected), sorted(expected - set(stored))
        raise ExportError(f"{path.name} is not this model's graph as this exporter writes it (torch "
                          f"{torch.__version__}): unexpected {extra[:3]}, missing {missing[:3]}")
    for name, value in constants.items():  # shapes, masks, folded constants: the same in any export of this structure
        if stored[name].shape != value.shape or (not np.array_equal(stored[name], value) and value.size < 64):
            raise ExportError(f"{path.name}: initializer {name} differs from this model's ({list(stored[name].shape)} vs "
                              f"{list(value.shape)})")
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, place in placements.items():
            param = params[name]
            permuted = [param.shape[a] for a in place.axes]
            value = stored[place.name].reshape(permuted).transpose(np.argsort(place.axes))
            param.copy_(torch.from_numpy(np.array(value, np.float32)))  # a writable copy
    return sorted(set(params) - set(placements))
