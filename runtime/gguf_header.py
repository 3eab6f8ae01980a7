"""One tensor's place in a GGUF file, read straight from the header.

gguf-py's GGUFReader makes an array view of every metadata item, which for a 262k-word vocabulary takes seconds;
here the items are only stepped over (numeric arrays in one step, strings by their lengths).
"""

from __future__ import annotations

import mmap
import os
import struct
from typing import NamedTuple

_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type → bytes
_STRING, _ARRAY, _UINT32 = 8, 9, 4


class TensorInfo(NamedTuple):
    arch: str  # general.architecture, e.g. "gemma3"
    kind: int  # ggml type (0 F32, 1 F16, 8 Q8_0, ...)
    dims: tuple[int, ...]  # ne0 first: (width, rows) for an embedding table
    offset: int  # absolute byte offset of the tensor's data in the file


def find_tensor(path: str | os.PathLike, name: str) -> TensorInfo | None:
    """The tensor `name` of the GGUF at `path`, or None (no such tensor, not a little-endian GGUF v2 / v3)."""
    with open(path, "rb") as f:
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # only the header's pages are read
    try:
        return scan(buf, name)
    finally:
        buf.close()


def scan(buf, name: str) -> TensorInfo | None:
    """`find_tensor` over the file's bytes (anything indexable: mmap, bytes)."""
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", buf, 0)
    if magic != b"GGUF" or version not in (2, 3):  # a big-endian file reads as another version
        return None
    pos, arch, alignment = 24, "", 32

    def string() -> str:
        nonlocal pos
        (n,) = struct.unpack_from("<Q", buf, pos)
        pos += 8 + n
        return buf[pos - n:pos].decode("utf-8", "replace")

    def skip(kind: int) -> None:
        nonlocal pos
        if kind in _SCALAR_SIZES:
            pos += _SCALAR_SIZES[kind]
        elif kind == _STRING:
            (n,) = struct.unpack_from("<Q", buf, pos)
            pos += 8 + n
        elif kind == _ARRAY:
            item, count = struct.unpack_from("<IQ", buf, pos)
            pos += 12
            if item in _SCALAR_SIZES:
                pos += count * _SCALAR_SIZES[item]
            else:
                for _ in range(count):
                    skip(item)
        else:
            raise ValueError(f"unknown GGUF value type {kind}")

    for _ in range(n_kv):
        key = string()
        (kind,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        if key == "general.architecture" and kind == _STRING:
            arch = string()
        elif key == "general.alignment" and kind == _UINT32:
            (alignment,) = struct.unpack_from("<I", buf, pos)
            pos += 4
        else:
            skip(kind)
    found = None
    for _ in range(n_tensors):
        tensor_name = string()
        (n_dims,) = struct.unpack_from("<I", buf, pos)
        dims = struct.unpack_from(f"<{n_dims}Q", buf, pos + 4)
        kind, offset = struct.unpack_from("<IQ", buf, pos + 4 + 8 * n_dims)
        pos += 4 + 8 * n_dims + 12
        if tensor_name == name:
            found = (kind, tuple(int(d) for d in dims), offset)
    if found is None or alignment <= 0:
        return None
    data_start = pos + -pos % alignment
    return TensorInfo(arch, found[0], found[1], data_start + found[2])
