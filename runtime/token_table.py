"""Rows of a GGUF's token-embedding table, as llama.cpp's get_rows makes them.

They let the prompt's text go into the same `llama_decode` batch as the fused embedding rows: each call streams every
weight once, so six small calls cost six times the weight reads of one.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from runtime.gguf_header import find_tensor

# Architectures whose token inputs go into the first layer as they are, and those that scale them by √n_embd inside
# the token path only (Gemma): rows taken from their table get that factor here, in float32 as llama.cpp applies it.
UNSCALED_INPUTS = ("qwen2", "llama", "qwen3", "mistral")
SQRT_SCALED_INPUTS = ("gemma3",)  # llama.cpp's gemma2 graph scales embedding rows too: not listed

_CACHE_BYTES = 32 << 20  # the prompt's fixed words recur every window; at most this many bytes of rows are kept


class TokenTable:
    """Rows of a GGUF's token-embedding table for given ids, dequantized on demand with gguf-py (the file is
    memory-mapped: only the rows used are read)."""

    def __init__(self, data: np.ndarray, kind: int, width: int, scale: float = 1.0):
        self.data = data  # [rows, bytes of a row] (quantized) or [rows, width] (F32 / F16), memory-mapped
        self.kind = kind
        self.width = width
        self.scale = scale
        self._rows: dict[int, np.ndarray] = {}

    @classmethod
    def open(cls, path: str | os.PathLike) -> "TokenTable | None":
        """The table, or None when it cannot serve (no gguf package, an architecture whose input scaling is not
        known here, a type gguf-py cannot dequantize): prefill then goes piece by piece."""
        try:
            from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

            info = find_tensor(path, "token_embd.weight")
            if info is None or info.arch not in UNSCALED_INPUTS + SQRT_SCALED_INPUTS or len(info.dims) != 2:
                return None
            width, rows = info.dims
            block, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType(info.kind)]
            if info.kind in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
                dtype = np.float32 if info.kind == GGMLQuantizationType.F32 else np.float16
                data = np.memmap(path, dtype, "r", info.offset, (rows, width))
            else:
                data = np.memmap(path, np.uint8, "r", info.offset, (rows, width // block * block_bytes))
            scale = float(np.sqrt(np.float32(width))) if info.arch in SQRT_SCALED_INPUTS else 1.0
            table = cls(data, info.kind, width, scale)
            table.rows([0])  # a type this gguf-py cannot dequantize shows here, not in the first window
            table._rows.clear()
            return table
        except Exception:  # noqa: BLE001 — an optional speed-up never stops a model from loading
            return None

    def rows(self, ids: Sequence[int]) -> np.ndarray:
        """[n] token ids → [n, width] float32 input rows (scaled as the architecture's token path scales them)."""
        if len(self._rows) * self.width * 4 > _CACHE_BYTES:
            self._rows.clear()
        missing = sorted({int(i) for i in ids} - self._rows.keys())
        if missing:
            from gguf import GGMLQuantizationType
            from gguf.quants import dequantize

            raw = self.data[missing]
            kind = GGMLQuantizationType(self.kind)
            values = raw.astype(np.float32) if kind in (GGMLQuantizationType.F32, GGMLQuantizationType.F16) \
                else dequantize(raw, kind)
            self._rows.update(zip(missing, np.asarray(values, np.float32).reshape(len(missing), -1)))
        rows = np.stack([self._rows[int(i)] for i in ids])
        return rows * np.float32(self.scale) if self.scale != 1.0 else rows

    def join(self, chunks) -> np.ndarray:
        """Chunks (token ids, or [n, width] float32 rows) → one [positions, width] float32 batch, in order."""
        rows = [c if isinstance(c, np.ndarray) else self.rows(c) for c in chunks]
        return np.ascontiguousarray(np.concatenate(rows).astype(np.float32, copy=False))
