"""The LLM stage: a GGUF model in llama.cpp (through llama-cpp-python's C API), fed token ids and
embedding rows in order, decoded greedily.

This is the one embedding boundary of the system: everything before it produces rows of the LLM's width,
everything after it is ordinary decoding. The stage knows nothing about video or audio.

Prefill goes as one batch: the text between the fused rows is turned into rows of the GGUF's own token table
(dequantized as llama.cpp's get_rows does), so the whole prompt is one `llama_decode` — each call streams every
weight once, so six small calls cost six times the weight reads of one.
"""

from __future__ import annotations

import ctypes
import os
import struct
import time
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

import llama_cpp

from runtime.errors import EdgeError

Piece = Union[Sequence[int], np.ndarray]  # token ids, or [n, n_embd] float32 rows

_backend_ready = False


def discard_log(level, text, user_data):  # llama.cpp logs every load to stderr; the CLI prints JSON only
    pass


_quiet_log = llama_cpp.llama_log_callback(discard_log)


def quiet_llama_logs() -> None:
    llama_cpp.llama_log_set(_quiet_log, ctypes.c_void_p(0))


class LLMError(EdgeError):
    pass


# Architectures whose token inputs go into the first layer as they are, and those that scale them by √n_embd inside
# the token path only (Gemma): rows taken from their table get that factor here, in float32 as llama.cpp applies it.
UNSCALED_INPUTS = ("qwen2", "llama", "qwen3", "mistral")
SQRT_SCALED_INPUTS = ("gemma3",)  # llama.cpp's gemma2 graph scales embedding rows too: not listed


_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type → bytes


def _gguf_tensor(path: str | os.PathLike, name: str) -> tuple[str, int, tuple[int, ...], int] | None:
    """(architecture, ggml type, dims (ne0 first), absolute file offset) of one tensor, read straight from the
    header. gguf-py's GGUFReader makes an array view of every metadata item, which for a 262k-word vocabulary takes
    seconds; here the items are only stepped over (numeric arrays in one step, strings by their lengths)."""
    import mmap

    with open(path, "rb") as f:
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # only the header's pages are read
    try:
        return _scan_gguf(buf, name)
    finally:
        buf.close()


def _scan_gguf(buf, name: str) -> tuple[str, int, tuple[int, ...], int] | None:
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
        elif kind == 8:
            (n,) = struct.unpack_from("<Q", buf, pos)
            pos += 8 + n
        elif kind == 9:
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
        if key == "general.architecture" and kind == 8:
            arch = string()
        elif key == "general.alignment" and kind == 4:
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
    if found is None:
        return None
    if alignment <= 0:
        return None
    data_start = pos + -pos % alignment
    return arch, found[0], found[1], data_start + found[2]


class TokenTable:
    """Rows of a GGUF's token-embedding table for given ids, dequantized on demand with gguf-py (the file is
    memory-mapped: only the rows used are read). None-returning `open` when it cannot serve (no gguf package, an
    architecture whose input scaling is not known here)."""

    def __init__(self, data: np.ndarray, kind: int, width: int, scale: float = 1.0):
        self.data = data  # [rows, bytes of a row] (quantized) or [rows, width] (F32 / F16), memory-mapped
        self.kind = kind
        self.width = width
        self.scale = scale
        self._rows: dict[int, np.ndarray] = {}  # the prompt's fixed words recur every window

    @classmethod
    def open(cls, path: str | os.PathLike) -> "TokenTable | None":
        """The table, or None (prefill then goes piece by piece) when anything about it is not as expected."""
        try:
            from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

            info = _gguf_tensor(path, "token_embd.weight")
            if info is None:
                return None
            arch, kind, dims, offset = info
            if arch not in UNSCALED_INPUTS + SQRT_SCALED_INPUTS or len(dims) != 2:
                return None
            width, rows = dims
            block, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
            if kind in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
                data = np.memmap(path, np.float32 if kind == GGMLQuantizationType.F32 else np.float16, "r", offset,
                                 (rows, width))
            else:
                data = np.memmap(path, np.uint8, "r", offset, (rows, width // block * block_bytes))
            scale = float(np.sqrt(np.float32(width))) if arch in SQRT_SCALED_INPUTS else 1.0
            table = cls(data, kind, width, scale)
            table.rows([0])  # a type this gguf-py cannot dequantize shows here, not in the first window
            table._rows.clear()
            return table
        except Exception:  # noqa: BLE001 — an optional speed-up never stops a model from loading
            return None

    def rows(self, ids: Sequence[int]) -> np.ndarray:
        if len(self._rows) * self.width * 4 > 32 << 20:  # at most ~32 MB, however many new words come
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


@dataclass
class Generation:
    ids: list[int]
    text: str
    prompt_tokens: int
    prefill_ms: float
    decode_ms: float
    first_token_ms: float = 0.0  # prompt in → first token chosen


class TextCodec:
    """Text ↔ ids with a GGUF's own vocabulary (llama.cpp's tokenizer): the runtime's, and training's for a GGUF base
    model, so that both split text identically. Needs `self.vocab`."""

    def tokenize(self, text: str) -> list[int]:
        """Plain text → ids: no bos added, special-token strings stay text."""
        data = text.encode("utf-8")
        buf = (llama_cpp.llama_token * (len(data) + 8))()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, len(buf), False, False)
        if n < 0:
            raise LLMError(f"tokenizer needs {-n} slots for {len(data)} bytes")
        return list(buf[:n])

    def token_bytes(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        return buf.raw[:n]

    def detokenize(self, ids: Sequence[int]) -> str:
        return b"".join(self.token_bytes(t) for t in ids).decode("utf-8", errors="replace")

    def special_id(self, text: str) -> int:
        """The id of a special token written as text (e.g. "<eos>")."""
        data = text.encode("utf-8")
        buf = (llama_cpp.llama_token * 8)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, len(buf), False, True)
        if n != 1:
            raise LLMError(f"{text!r} is not one token of this vocabulary")
        return int(buf[0])


class Vocab(TextCodec):
    """Only the vocabulary of a GGUF (no weights are loaded): tokenizing for training and export checks."""

    def __init__(self, path: str | os.PathLike):
        global _backend_ready
        quiet_llama_logs()
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _backend_ready = True
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self.path = os.fspath(path)
        self.model = llama_cpp.llama_model_load_from_file(os.fsencode(path), params)
        if not self.model:
            raise LLMError(f"llama.cpp could not read the vocabulary of {path}")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.bos_id = int(llama_cpp.llama_vocab_bos(self.vocab))
        self.eos_id = int(llama_cpp.llama_vocab_eos(self.vocab))

    def __del__(self):
        if getattr(self, "model", None):
            llama_cpp.llama_model_free(self.model)
            self.model = None


class LLM(TextCodec):
    """One GGUF model and one context. Not thread-safe: one window at a time."""

    def __init__(self, path: str | os.PathLike, n_ctx: int = 2048, n_batch: int = 512, n_threads: int | None = None,
                 flash_attn: bool = True, kv_f32: bool = False, verbose: bool = False, batch_prefill: bool = True,
                 adapter: str | os.PathLike | None = None):
        """`path`: the GGUF model; `adapter`: a LoRA adapter GGUF applied on top of it at run time (scale 1)."""
        global _backend_ready
        if not verbose:
            quiet_llama_logs()
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _backend_ready = True
        mparams = llama_cpp.llama_model_default_params()
        self.model = llama_cpp.llama_model_load_from_file(os.fsencode(path), mparams)
        if not self.model:
            raise LLMError(f"llama.cpp could not load {path}")
        threads = n_threads or os.cpu_count() or 1
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO if flash_attn
                                   else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        if kv_f32:  # exact-parity runs: no F16 rounding in the KV cache
            cparams.type_k = cparams.type_v = 0  # GGML_TYPE_F32
        self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            llama_cpp.llama_model_free(self.model)
            self.model = None
            raise LLMError(f"llama.cpp could not create a context for {path}")
        self.adapter = None
        if adapter is not None:
            self._apply_adapter(adapter)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_embd = llama_cpp.llama_model_n_embd_inp(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.n_ctx = llama_cpp.llama_n_ctx(self.ctx)
        self.n_batch = n_batch
        self.threads = threads
        self._tokens = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._embeds = llama_cpp.llama_batch_init(n_batch, self.n_embd, 1)
        self._pos = 0
        self._prefix: list[int] | None = None
        self.table = TokenTable.open(path) if batch_prefill else None
        if self.table is not None and (self.table.width != self.n_embd or len(self.table.data) != self.n_vocab
                                       or self._adapter_touches_table(adapter)):
            self.table = None  # not the input width (a projected embedding): keep the piece-by-piece prefill

    @staticmethod
    def _adapter_touches_table(adapter) -> bool:
        """An adapter on token_embd changes the token path only: rows read from the base's table would miss it."""
        return adapter is not None and _gguf_tensor(adapter, "token_embd.weight.lora_a") is not None

    def _apply_adapter(self, path: str | os.PathLike) -> None:
        self.adapter = llama_cpp.llama_adapter_lora_init(self.model, os.fsencode(path))
        if not self.adapter:
            self.close()
            raise LLMError(f"llama.cpp could not load the LoRA adapter {path} onto this model (another base model?)")
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self.adapter)
        scales = (ctypes.c_float * 1)(1.0)
        if llama_cpp.llama_set_adapters_lora(self.ctx, adapters, 1, scales) != 0:
            self.close()
            raise LLMError(f"llama.cpp could not apply the LoRA adapter {path}")

    def close(self) -> None:
        self._free_grammars()
        if getattr(self, "ctx", None):
            if hasattr(self, "_tokens"):
                llama_cpp.llama_batch_free(self._tokens)
                llama_cpp.llama_batch_free(self._embeds)
                del self._tokens, self._embeds
            llama_cpp.llama_free(self.ctx)
            self.ctx = None
        if getattr(self, "adapter", None):
            llama_cpp.llama_adapter_lora_free(self.adapter)
            self.adapter = None
        if getattr(self, "model", None):
            llama_cpp.llama_model_free(self.model)
            self.model = None

    def __del__(self):
        self.close()

    # --- decoding -----------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the KV cache: the next window starts from position 0."""
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx), True)
        self._pos = 0
        self._prefix: list[int] | None = None

    def _decode(self, piece: Piece, start: int, end: int, logits_for: str) -> None:
        """Decode piece[start:end] at the next positions; logits_for is "all", "last" or "none"."""
        is_embd = isinstance(piece, np.ndarray)
        batch = self._embeds if is_embd else self._tokens
        n = end - start
        batch.n_tokens = n
        if is_embd:
            rows = np.ascontiguousarray(piece[start:end], dtype=np.float32)
            ctypes.memmove(batch.embd, rows.ctypes.data, rows.nbytes)
        for i in range(n):
            if not is_embd:
                batch.token[i] = int(piece[start + i])
            batch.pos[i] = self._pos + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = logits_for == "all" or (logits_for == "last" and i == n - 1)
        rc = llama_cpp.llama_decode(self.ctx, batch)
        if rc != 0:
            raise LLMError(f"llama_decode failed with code {rc} at position {self._pos}")
        self._pos += n

    def _logits(self, i: int) -> np.ndarray:
        ptr = llama_cpp.llama_get_logits_ith(self.ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()

    def feed(self, pieces: Sequence[Piece], all_logits: bool = False) -> np.ndarray:
        """Append pieces to the context in order. → logits of the last position [n_vocab], or of every
        position [n, n_vocab] with all_logits. Chunks never exceed n_batch (llama.cpp aborts past it)."""
        pieces = [p for p in pieces if len(p)]
        if not pieces:
            raise LLMError("nothing to decode")
        for piece in pieces:
            if isinstance(piece, np.ndarray) and (piece.ndim != 2 or piece.shape[1] != self.n_embd):
                raise LLMError(f"embedding rows of shape {list(piece.shape)} do not fit the LLM width {self.n_embd}")
        total = sum(len(p) for p in pieces)
        if self._pos + total > self.n_ctx:
            raise LLMError(f"prompt of {total} positions does not fit the context ({self.n_ctx - self._pos} left)")
        rows = []
        for index, piece in enumerate(pieces):
            for start in range(0, len(piece), self.n_batch):
                end = min(start + self.n_batch, len(piece))
                is_last = index == len(pieces) - 1 and end == len(piece)
                self._decode(piece, start, end, "all" if all_logits else "last" if is_last else "none")
                if all_logits:
                    rows.extend(self._logits(i) for i in range(end - start))
        return np.stack(rows) if all_logits else self._logits(-1)

    def generate(self, pieces: Sequence[Piece], max_new_tokens: int, eos_id: int, stop_text: str = "",
                 grammar: str | None = None) -> Generation:
        """Greedy answer for a prompt made of token ids and embedding rows.

        The KV state of a leading token piece equal to the previous call's is kept (the static start of the
        prompt is evaluated once per stream). With `grammar` (GBNF), decoding is constrained to it.
        """
        pieces = [p for p in pieces if len(p)]
        t0 = time.perf_counter()
        rest = self._one_batch(self._reuse_prefix(pieces))
        if not rest:  # the whole prompt is the kept prefix: its last logits were not kept, so feed it again
            self.reset()
            rest = self._one_batch(pieces)
        logits = self.feed(rest)
        rule = self._grammar(grammar) if grammar else None
        t1 = time.perf_counter()
        first_token_ms = None
        ids: list[int] = []
        text_bytes = b""
        while self._pos < self.n_ctx:
            next_id = int(np.argmax(logits))
            if rule is not None and not self._allows(rule, next_id, logits):
                next_id = self._best_allowed(rule, logits)
            if first_token_ms is None:
                first_token_ms = (time.perf_counter() - t0) * 1e3
            if next_id == eos_id or llama_cpp.llama_vocab_is_eog(self.vocab, next_id):
                break
            if rule is not None:
                llama_cpp.llama_sampler_accept(rule, next_id)
            ids.append(next_id)
            text_bytes += self.token_bytes(next_id)
            if len(ids) >= max_new_tokens or (stop_text and stop_text.encode() in text_bytes):
                break
            logits = self.feed([[next_id]])
        t2 = time.perf_counter()
        return Generation(ids, text_bytes.decode("utf-8", errors="replace"), sum(len(p) for p in pieces),
                          (t1 - t0) * 1e3, (t2 - t1) * 1e3, first_token_ms or 0.0)

    def _one_batch(self, pieces: list) -> list:
        """Token pieces turned into rows of the token table, and every piece joined into one embedding batch."""
        if self.table is None or len(pieces) < 2:
            return pieces
        rows = [p if isinstance(p, np.ndarray) else self.table.rows(p) for p in pieces]
        return [np.ascontiguousarray(np.concatenate(rows).astype(np.float32, copy=False))]

    def _reuse_prefix(self, pieces: list) -> list:
        """Keep the KV state of the first piece when it is the same token list as last time."""
        first = pieces[0] if pieces and not isinstance(pieces[0], np.ndarray) else None
        if first is not None and self._prefix == list(first) and self._pos >= len(first):
            llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(self.ctx), 0, len(first), -1)
            self._pos = len(first)
            return pieces[1:] if len(pieces) > 1 else []
        self.reset()
        if first is not None and len(pieces) > 1:
            self.feed([first])
            self._prefix = list(first)
            return pieces[1:]
        return pieces

    # --- constrained decoding ---------------------------------------------------------------------------
    # Checking every token of a 262k-word vocabulary against the grammar costs seconds per step on two cores, so
    # the greedy choice is checked alone first and the whole vocabulary is filtered only when the grammar
    # refuses it (llama.cpp's own samplers do the same); the answer is the one full filtering would give.

    def _grammar(self, grammar: str):
        """llama.cpp's grammar sampler for `grammar`, made once per LLM and reset to its start for each answer."""
        rules = self.__dict__.setdefault("_grammars", {})
        rule = rules.get(grammar)
        if rule is None:
            rule = llama_cpp.llama_sampler_init_grammar(self.vocab, grammar.encode(), b"root")
            if not rule:
                raise LLMError("llama.cpp rejected the answer grammar")
            rules[grammar] = rule
        llama_cpp.llama_sampler_reset(rule)
        return rule

    def _allows(self, rule, token: int, logits: np.ndarray) -> bool:
        one = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, float(logits[token]), 0.0))
        view = llama_cpp.llama_token_data_array(one, 1, -1, False)
        llama_cpp.llama_sampler_apply(rule, ctypes.byref(view))
        return bool(np.isfinite(one[0].logit))

    def _best_allowed(self, rule, logits: np.ndarray) -> int:
        cand = np.zeros(logits.size, dtype=[("id", np.int32), ("logit", np.float32), ("p", np.float32)])
        cand["id"] = np.arange(logits.size)
        cand["logit"] = logits
        view = llama_cpp.llama_token_data_array(cand.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)),
                                                logits.size, -1, False)
        llama_cpp.llama_sampler_apply(rule, ctypes.byref(view))
        allowed = cand["logit"]
        if not np.isfinite(allowed).any():
            raise LLMError("the answer grammar allows no next token")
        return int(cand["id"][int(np.argmax(allowed))])

    def _free_grammars(self) -> None:
        for rule in self.__dict__.pop("_grammars", {}).values():
            llama_cpp.llama_sampler_free(rule)
