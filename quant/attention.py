"""Fold the exporter's scaled-dot-product attention into ONNX Runtime's MultiHeadAttention.

PyTorch's ONNX exporter writes each attention as some twenty nodes: the heads split by Reshape and Transpose,
Q and K each scaled by √scale, a batched MatMul, Softmax (with an additive mask, and `Where(IsNaN)` so that fully
masked rows give 0), a second MatMul and the heads merged back. ONNX Runtime's transformer optimizer does not
recognise this form, and on the CPU its pieces cost more than the products themselves (CLIP-L: 121 Transposes,
~110 ms of a 2.3 s window). One `com.microsoft.MultiHeadAttention` node takes the three projections as they are,
[batch, sequence, heads × head size], and computes the same thing; the projections stay MatMuls for the quantizer.

A block is folded only where every node is the expected one, the head count and the scales are constants, and the
mask (if any) has the [batch or 1, heads or 1, query, key] shape MultiHeadAttention takes; anything else is left
as it is.
"""

from __future__ import annotations

from collections import defaultdict

MHA_DOMAIN = "com.microsoft"


class _Graph:
    def __init__(self, graph):
        from onnx import numpy_helper

        self.graph = graph
        self.constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        self.producer = {o: n for n in graph.node for o in n.output}
        self.consumers = defaultdict(list)
        for n in graph.node:
            for i in n.input:
                self.consumers[i].append(n)
        self.shapes = {v.name: v.type.tensor_type.shape for v in list(graph.value_info) + list(graph.input)}

    def made_by(self, name: str, op: str, perm: list[int] | None = None):
        """The node of type `op` that writes `name` (with Transpose's `perm`), else None."""
        node = self.producer.get(name)
        if node is None or node.op_type != op:
            return None
        if perm is not None and _attr(node, "perm") != perm:
            return None
        return node

    def sole_reader(self, name: str, op: str, perm: list[int] | None = None):
        readers = self.consumers.get(name, [])
        if len(readers) != 1:
            return None
        return readers[0] if readers[0].op_type == op and (perm is None or _attr(readers[0], "perm") == perm) else None

    def scalar(self, name: str) -> float | None:
        value = self.constants.get(name)
        return float(value.reshape(())) if value is not None and value.size == 1 else None

    def dims(self, name: str) -> list | None:
        shape = self.shapes.get(name)
        if shape is None:
            return None
        return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in shape.dim]


def _attr(node, name):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return list(helper.get_attribute_value(a)) if a.type == a.INTS else helper.get_attribute_value(a)
    return None


HEADS_SPLIT = [0, 2, 1, 3]


def _match(g: _Graph, softmax):
    """The attention block around one Softmax → (q, k, v, mask, output, heads, scale), or None."""
    scores = g.producer.get(softmax.input[0])
    mask = ""
    if scores is not None and scores.op_type == "Add":
        mask, scores = scores.input[1], g.producer.get(scores.input[0])
    if scores is None or scores.op_type != "MatMul" or _attr(softmax, "axis") not in (-1, 3):
        return None
    probs = softmax.output[0]
    safe = [n for n in g.consumers[probs] if n.op_type == "Where" and n.input[2] == probs]
    if safe:
        isnan = g.made_by(safe[0].input[0], "IsNaN")
        if not mask or isnan is None or isnan.input[0] != probs or g.scalar(safe[0].input[1]) != 0.0:
            return None
        probs = safe[0].output[0]
    weighted = [n for n in g.consumers[probs] if n.op_type == "MatMul" and n.input[0] == probs]
    if len(weighted) != 1:
        return None
    v_heads = g.made_by(weighted[0].input[1], "Transpose", HEADS_SPLIT)
    v_split = v_heads and g.made_by(v_heads.input[0], "Reshape")
    merged = g.sole_reader(weighted[0].output[0], "Transpose", HEADS_SPLIT)
    out = merged and g.sole_reader(merged.output[0], "Reshape")
    q_scaled = g.made_by(scores.input[0], "Mul")
    q_heads = q_scaled and g.made_by(q_scaled.input[0], "Transpose", HEADS_SPLIT)
    q_split = q_heads and g.made_by(q_heads.input[0], "Reshape")
    # K: split, heads first, flattened to [batch·heads, seq, size], transposed, shaped back to [b, h, size, seq]
    k_scaled = g.made_by(scores.input[1], "Mul")
    k_back = k_scaled and g.made_by(k_scaled.input[0], "Reshape")
    k_t = k_back and g.made_by(k_back.input[0], "Transpose", [0, 2, 1])
    k_flat = k_t and g.made_by(k_t.input[0], "Reshape")
    k_heads = k_flat and g.made_by(k_flat.input[0], "Transpose", HEADS_SPLIT)
    k_split = k_heads and g.made_by(k_heads.input[0], "Reshape")
    if not all((v_split, out, q_split, k_split)):
        return None
    split, merge = g.constants.get(q_split.input[1]), g.constants.get(out.input[1])
    sq, sk = g.scalar(q_scaled.input[1]), g.scalar(k_scaled.input[1])
    if split is None or split.size != 4 or int(split[2]) <= 0 or merge is None or merge.size != 3 or sq is None or sk is None:
        return None
    heads = int(split[2])
    if mask:
        dims = g.dims(mask)
        if dims is None or len(dims) != 4 or dims[1] not in (1, heads):
            return None
    return q_split.input[0], k_split.input[0], v_split.input[0], mask, out, heads, sq * sk


def fuse_attention(model) -> int:
    """Rewrite `model` (an onnx ModelProto, in place); → the number of attention blocks folded."""
    from onnx import helper

    g = _Graph(model.graph)
    folded = []
    for softmax in [n for n in model.graph.node if n.op_type == "Softmax"]:
        found = _match(g, softmax)
        if found is None:
            continue
        q, k, v, mask, out, heads, scale = found
        node = helper.make_node("MultiHeadAttention", [q, k, v, "", "", mask], [out.output[0]],
                                name=f"{out.name}/MultiHeadAttention", domain=MHA_DOMAIN, num_heads=heads, scale=scale)
        folded.append((out, node))
    for out, node in folded:
        index = list(model.graph.node).index(out)
        model.graph.node.remove(out)
        model.graph.node.insert(index, node)
    if folded:
        _prune(model.graph)
        if not any(o.domain == MHA_DOMAIN for o in model.opset_import):
            model.opset_import.append(helper.make_opsetid(MHA_DOMAIN, 1))
    return len(folded)


def _prune(graph) -> None:
    """Drop the nodes and initializers nothing reads any more."""
    needed = {o.name for o in graph.output}
    while True:
        read = {i for n in graph.node for i in n.input} | needed
        dead = [n for n in graph.node if not any(o in read for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    read = {i for n in graph.node for i in n.input} | needed
    kept = [i for i in graph.initializer if i.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    live = read | {o for n in graph.node for o in n.output}
    kept_info = [v for v in graph.value_info if v.name in live]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
