"""A bundle's ONNX graph run op by op in PyTorch eager (CPU or CUDA): the PyTorch reference of the device check.

The training code's modules would be the natural reference, but the audio encoder is transformers' HuBERT and a
bundle carries only its graphs, not a checkpoint; the graphs themselves hold the weights, and the few operators the
exported encoders and fusion use map one to one onto torch functions. Needs torch and onnx (to read the file), nothing
else. An operator outside the table is an error that names it.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.errors import BenchmarkError


class GraphError(BenchmarkError):
    pass


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _ints(t) -> list[int]:
    return [int(v) for v in t.reshape(-1).tolist()]


def _reduce(kind):
    def op(x, axes=None, keepdims=1, noop_with_empty_axes=0, **_):
        import torch

        dims = _ints(axes) if axes is not None else []
        if not dims:
            if noop_with_empty_axes:
                return x
            dims = list(range(x.dim()))
        keep = bool(keepdims)
        if kind == "mean":
            return x.mean(dim=dims, keepdim=keep)
        if kind == "sum":
            return x.sum(dim=dims, keepdim=keep)
        return torch.linalg.vector_norm(x, dim=dims, keepdim=keep)
    return op


def _conv(x, w, b=None, pads=None, strides=None, dilations=None, group=1, auto_pad=b"NOTSET", **_):
    import torch.nn.functional as F

    n = w.dim() - 2
    if auto_pad not in (b"NOTSET", "NOTSET"):
        raise GraphError(f"Conv auto_pad={auto_pad!r} is not supported")
    pads = list(pads or [0] * 2 * n)
    begin, end = pads[:n], pads[n:]
    if begin != end:  # F.conv pads both sides alike: pad the odd ones first
        x = F.pad(x, [p for i in reversed(range(n)) for p in (begin[i], end[i])])
        begin = [0] * n
    conv = (F.conv1d, F.conv2d, F.conv3d)[n - 1]
    return conv(x, w, b, stride=list(strides or [1] * n), padding=begin, dilation=list(dilations or [1] * n),
                groups=group)


def _maxpool(x, kernel_shape, strides=None, pads=None, dilations=None, ceil_mode=0, **_):
    import torch.nn.functional as F

    n = len(kernel_shape)
    pads = list(pads or [0] * 2 * n)
    if pads[:n] != pads[n:]:
        x = F.pad(x, [p for i in reversed(range(n)) for p in (pads[i], pads[n + i])], value=float("-inf"))
        pads = [0] * 2 * n
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[n - 1]
    return pool(x, kernel_shape, list(strides or [1] * n), pads[:n], list(dilations or [1] * n), bool(ceil_mode))


def _pad(x, pads, value=None, axes=None, mode=b"constant", **_):
    import torch.nn.functional as F

    if mode not in (b"constant", "constant"):
        raise GraphError(f"Pad mode {mode!r} is not supported")
    pads = _ints(pads)
    rank = x.dim()
    dims = _ints(axes) if axes is not None else list(range(rank))
    dims = [d % rank for d in dims]
    k = len(dims)
    full = {d: (pads[i], pads[k + i]) for i, d in enumerate(dims)}
    flat = [p for d in reversed(range(rank)) for p in full.get(d, (0, 0))]
    fill = float(value.reshape(-1)[0]) if value is not None and value.numel() else 0.0
    return F.pad(x, flat, value=fill)


def _slice(x, starts, ends, axes=None, steps=None, **_):
    starts, ends = _ints(starts), _ints(ends)
    axes = _ints(axes) if axes is not None else list(range(len(starts)))
    steps = _ints(steps) if steps is not None else [1] * len(starts)
    index = [slice(None)] * x.dim()
    for s, e, a, st in zip(starts, ends, axes, steps):
        if st <= 0:
            raise GraphError("Slice with a negative step is not supported")
        size = x.shape[a % x.dim()]  # ONNX writes "to the end" as INT64_MAX
        index[a % x.dim()] = slice(max(min(s, size), -size), max(min(e, size), -size - 1), st)
    return x[tuple(index)]


def _reshape(x, shape, allowzero=0, **_):
    dims = _ints(shape)
    if not allowzero:
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return x.reshape(dims)


def _unsqueeze(x, axes, **_):
    out = x
    rank = x.dim() + len(_ints(axes))
    for a in sorted(d % rank for d in _ints(axes)):
        out = out.unsqueeze(a)
    return out


def _expand(x, shape, **_):
    import torch

    return x.expand(torch.broadcast_shapes(tuple(x.shape), tuple(_ints(shape))))


def _shape(x, start=0, end=None, **_):
    import torch

    return torch.tensor(list(x.shape)[start:end], dtype=torch.int64)  # shapes stay on the CPU, as plain ints would


def _gemm(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0, **_):
    a = a.transpose(-1, -2) if transA else a
    b = b.transpose(-1, -2) if transB else b
    out = alpha * (a @ b)
    return out if c is None else out + beta * c


def _layer_norm(x, scale, bias=None, axis=-1, epsilon=1e-5, **_):
    import torch.nn.functional as F

    axis = axis % x.dim()
    return F.layer_norm(x, tuple(x.shape[axis:]), scale, bias, epsilon)


def _instance_norm(x, scale, bias, epsilon=1e-5, **_):
    import torch.nn.functional as F

    return F.instance_norm(x, weight=scale, bias=bias, eps=epsilon)


def _table() -> dict:
    import torch
    import torch.nn.functional as F

    return {
        "Add": lambda a, b, **_: a + b, "Sub": lambda a, b, **_: a - b, "Mul": lambda a, b, **_: a * b,
        "Div": lambda a, b, **_: a / b, "Pow": lambda a, b, **_: a ** b, "Sqrt": lambda x, **_: torch.sqrt(x),
        "Relu": lambda x, **_: F.relu(x), "Sigmoid": lambda x, **_: torch.sigmoid(x), "Tanh": lambda x, **_: torch.tanh(x),
        "Erf": lambda x, **_: torch.erf(x), "Neg": lambda x, **_: -x, "Identity": lambda x, **_: x,
        "Gelu": lambda x, approximate=b"none", **_: F.gelu(x, approximate="tanh" if approximate in (b"tanh", "tanh") else "none"),
        "Softmax": lambda x, axis=-1, **_: torch.softmax(x, dim=axis),
        "MatMul": lambda a, b, **_: a @ b, "Gemm": _gemm, "Conv": _conv, "MaxPool": _maxpool, "Pad": _pad,
        "ReduceMean": _reduce("mean"), "ReduceSum": _reduce("sum"), "ReduceL2": _reduce("l2"),
        "Concat": lambda *xs, axis=0, **_: torch.cat(xs, dim=axis), "Slice": _slice, "Reshape": _reshape,
        "Unsqueeze": _unsqueeze, "Squeeze": lambda x, axes=None, **_: x.squeeze(tuple(_ints(axes))) if axes is not None else x.squeeze(),
        "Transpose": lambda x, perm=None, **_: x.permute(*(perm or reversed(range(x.dim())))),
        "Expand": _expand, "Shape": _shape, "Where": lambda c, a, b, **_: torch.where(c, a, b),
        "IsNaN": lambda x, **_: torch.isnan(x), "Cast": lambda x, to=1, **_: x.to(_DTYPES.get(to, torch.float32)),
        "LayerNormalization": _layer_norm, "InstanceNormalization": _instance_norm,
        "Flatten": lambda x, axis=1, **_: x.reshape(int(torch.tensor(x.shape[:axis]).prod()) if axis else 1, -1),
    }


_DTYPES: dict = {}


class TorchGraph:
    """One ONNX file → a callable on numpy arrays that runs it in PyTorch eager on `device` (float32)."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        try:
            import onnx
            from onnx import numpy_helper
            import torch
        except ImportError as err:
            raise GraphError(f"the PyTorch reference needs torch and onnx: {err}") from None
        global _DTYPES
        _DTYPES = {1: torch.float32, 6: torch.int32, 7: torch.int64, 9: torch.bool, 10: torch.float16, 11: torch.float64}
        self.torch, self.device, self.path = torch, device, str(path)
        model = onnx.load(str(path))  # external data is read from beside the file
        self.ops = _table()
        missing = sorted({n.op_type for n in model.graph.node if n.op_type not in self.ops and n.op_type != "Constant"}
                         | {n.domain for n in model.graph.node if n.domain not in ("", "ai.onnx")})
        if missing:
            raise GraphError(f"{Path(path).name}: operators the PyTorch reference lacks: {', '.join(missing)}")
        self.consts = {}
        for init in model.graph.initializer:
            self.consts[init.name] = self._tensor(numpy_helper.to_array(init))
        self.nodes = [(n.op_type, list(n.input), list(n.output), _attrs(n)) for n in model.graph.node]
        for i, (op, _, outputs, attrs) in enumerate(self.nodes):
            if op == "Constant":
                value = next(a for a in model.graph.node[i].attribute if a.name == "value")
                self.consts[outputs[0]] = self._tensor(numpy_helper.to_array(value.t))
        self.inputs = [i.name for i in model.graph.input if i.name not in self.consts]
        self.output = model.graph.output[0].name

    def _tensor(self, array):
        t = self.torch.from_numpy(array.copy())
        # integer constants are shapes, axes and indices: they stay on the CPU with the shapes they meet
        return t.to(self.device) if t.is_floating_point() else t

    def __call__(self, *arrays):
        torch = self.torch
        values = dict(self.consts)
        for name, array in zip(self.inputs, arrays):
            values[name] = torch.from_numpy(array).to(self.device, torch.float32)
        with torch.no_grad():
            for op, inputs, outputs, attrs in self.nodes:
                if op == "Constant":
                    continue
                args = [values[n] if n else None for n in inputs]
                while args and args[-1] is None:
                    args.pop()
                result = self.ops[op](*args, **attrs)
                values[outputs[0]] = result
        return values[self.output].float().cpu().numpy()
