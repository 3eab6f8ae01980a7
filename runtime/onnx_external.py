"""Which files an ONNX graph takes tensor data from, read from the protobuf wire format without loading it.

ONNX Runtime (and TensorRT's ONNX parser) open every `external_data` location a tensor names, relative to the
graph's folder; before 1.24 ONNX Runtime also followed absolute paths and links out of it. A bundle is checked
against these locations before any graph is loaded. The device runtime has no `onnx` package, and parsing the
whole model with it would copy every inline weight; this reader walks only the fields that can hold a tensor
(initializers, sparse initializers, node attributes, subgraphs, functions, training graphs) and skips the rest
by length, on a memory map.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass

# Field numbers of onnx.proto3 (ONNX IR version 10).
_MODEL_GRAPH, _MODEL_TRAINING, _MODEL_FUNCTIONS = 7, 20, 25
_TRAINING_GRAPHS = (1, 2)  # initialization, algorithm
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 1, 5, 15
_NODE_ATTRIBUTE = 5
_FUNCTION_NODE, _FUNCTION_ATTRIBUTE = 7, 11
_ATTR_TENSOR, _ATTR_GRAPH, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_TENSORS = (1, 2)  # values, indices
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_MAX_DEPTH = 64  # subgraphs within subgraphs; protobuf itself stops at 100


class OnnxFormatError(ValueError):
    pass


@dataclass(frozen=True)
class ExternalRef:
    tensor: str  # the tensor's name, for messages
    location: str | None  # None: marked external without a location


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise OnnxFormatError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview, start: int, end: int):
    """(field number, wire type, value): an int for varints, a (start, end) span for length-delimited fields."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise OnnxFormatError("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire == 1:
            value, pos = None, pos + 8
        elif wire == 5:
            value, pos = None, pos + 4
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            value, pos = (pos, pos + length), pos + length
        else:  # groups: no ONNX message has them
            raise OnnxFormatError(f"wire type {wire}")
        if pos > end:
            raise OnnxFormatError("a field runs past its message")
        yield number, wire, value


def _text(buf: memoryview, span: tuple[int, int]) -> str:
    try:
        return bytes(buf[span[0]:span[1]]).decode("utf-8")
    except UnicodeDecodeError:
        raise OnnxFormatError("a string that is not UTF-8") from None


class _Walker:
    def __init__(self, buf: memoryview):
        self.buf = buf
        self.refs: list[ExternalRef] = []

    def messages(self, span, numbers):
        for number, wire, value in _fields(self.buf, *span):
            if wire == 2 and number in numbers:
                yield number, value

    def model(self, span):
        for number, value in self.messages(span, (_MODEL_GRAPH, _MODEL_TRAINING, _MODEL_FUNCTIONS)):
            if number == _MODEL_GRAPH:
                self.graph(value, 0)
            elif number == _MODEL_TRAINING:
                for _, graph in self.messages(value, _TRAINING_GRAPHS):
                    self.graph(graph, 0)
            else:
                for kind, inner in self.messages(value, (_FUNCTION_NODE, _FUNCTION_ATTRIBUTE)):
                    self.node(inner, 0) if kind == _FUNCTION_NODE else self.attribute(inner, 0)

    def graph(self, span, depth):
        if depth > _MAX_DEPTH:
            raise OnnxFormatError("subgraphs nested too deep")
        for number, value in self.messages(span, (_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE)):
            if number == _GRAPH_NODE:
                self.node(value, depth)
            elif number == _GRAPH_INITIALIZER:
                self.tensor(value)
            else:
                self.sparse(value)

    def node(self, span, depth):
        for _, value in self.messages(span, (_NODE_ATTRIBUTE,)):
            self.attribute(value, depth)

    def attribute(self, span, depth):
        wanted = (_ATTR_TENSOR, _ATTR_GRAPH, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES)
        for number, value in self.messages(span, wanted):
            if number in (_ATTR_TENSOR, _ATTR_TENSORS):
                self.tensor(value)
            elif number in (_ATTR_GRAPH, _ATTR_GRAPHS):
                self.graph(value, depth + 1)
            else:
                self.sparse(value)

    def sparse(self, span):
        for _, value in self.messages(span, _SPARSE_TENSORS):
            self.tensor(value)

    def tensor(self, span):
        name, external, locations = "", False, []
        for number, wire, value in _fields(self.buf, *span):
            if number == _TENSOR_NAME and wire == 2:
                name = _text(self.buf, value)
            elif number == _TENSOR_LOCATION and wire == 0:
                external = value == _EXTERNAL
            elif number == _TENSOR_EXTERNAL and wire == 2:
                entry = dict((k, _text(self.buf, v)) for k, v in self.messages(value, (1, 2)))
                if entry.get(1) == "location":
                    locations.append(entry.get(2, ""))
        # a location counts even when the tensor is not marked external: some reader may still follow it
        self.refs.extend(ExternalRef(name, loc) for loc in locations)
        if external and not locations:
            self.refs.append(ExternalRef(name, None))


def external_refs(path: str | os.PathLike) -> list[ExternalRef]:
    """Every external-data reference in the ONNX file at `path`, in file order. Raises OnnxFormatError when
    the file is not a well-formed protobuf message, OSError when it cannot be read."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise OnnxFormatError("empty file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            buf = memoryview(mapped)
            try:
                walker = _Walker(buf)
                walker.model((0, size))
                return walker.refs
            finally:
                buf.release()
