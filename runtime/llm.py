"""The LLM stage: one GGUF model in one llama.cpp context (through llama-cpp-python's C API), fed chunks — token ids
and embedding rows — in order, answering greedily.

This is the one embedding boundary of the system, as llama.cpp's mtmd draws it: everything before it produces rows of
the LLM's width, everything after it is ordinary decoding. The stage knows nothing about video or audio. Its parts:
runtime/vocab.py (text ↔ ids), runtime/token_table.py (ids → input rows, read through runtime/gguf_header.py),
runtime/llama_batch.py (chunks packed into llama_batch structs and decoded), runtime/sampler.py (the greedy,
grammar-constrained choice); runtime/prompt.py builds the chunks.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from typing import Sequence

import llama_cpp
import numpy as np

from runtime.gguf_header import find_tensor
from runtime.llama_batch import BatchDecoder, Chunk
from runtime.token_table import TokenTable
from runtime.vocab import LLMError, TextCodec, init_backend, quiet_llama_logs
from runtime.vocab import discard_log  # noqa: F401 — the stream CLI imports it from here


@functools.lru_cache(maxsize=1)
def amx_build() -> bool:
    """Whether this llama.cpp runs its matrix products on AMX (built with it: runtime/llama_build_flags.py)."""
    return b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info()


def model_params():
    """llama.cpp's defaults, except that an AMX build reads the weights into memory instead of mapping the file: it
    runs a repacked copy of them, and the mapping kept beside it held the file a second time (Q8_0 Qwen2.5-0.5B shape:
    peak RSS 1148 → 791 MB on a Xeon)."""
    params = llama_cpp.llama_model_default_params()
    if amx_build() and "load_mode" in dict(type(params)._fields_):
        params.load_mode = llama_cpp.LLAMA_LOAD_MODE_NONE
    return params


class LLM(TextCodec):
    """One GGUF model and one context. Every public method that touches the context holds `lock`: callers on several
    threads take turns (llama_decode on one context must never run twice at once). Sequences `seq_id` < `n_seq` keep
    their own positions and kept prompt prefix in the one KV cache."""

    def __init__(self, path: str | os.PathLike, n_ctx: int = 2048, n_batch: int = 512, n_threads: int | None = None,
                 flash_attn: bool = True, kv_f32: bool = False, verbose: bool = False, batch_prefill: bool = True,
                 adapter: str | os.PathLike | None = None, n_seq: int = 1):
        """`path`: the GGUF model; `adapter`: a LoRA adapter GGUF applied on top of it at run time (scale 1)."""
        if not verbose:
            quiet_llama_logs()
        init_backend()
        self.lock = threading.RLock()  # re-entrant: a caller may hold it across several calls (one whole answer)
        self.model = llama_cpp.llama_model_load_from_file(os.fsencode(path), model_params())
        if not self.model:
            raise LLMError(f"llama.cpp could not load {path}")
        self._owns_model, self._forks = True, []
        self._make_context(n_ctx, n_batch, n_threads or os.cpu_count() or 1, n_seq, flash_attn, kv_f32)
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
        self._batches(n_seq)
        self.path, self.table = path, TokenTable.open(path) if batch_prefill else None
        embd_adapter = adapter is not None and find_tensor(adapter, "token_embd.weight.lora_a") is not None
        if self.table is not None and (self.table.width != self.n_embd or len(self.table.data) != self.n_vocab
                                       or embd_adapter):
            self.table = None  # a projected input, or an adapter on the token path only: prefill goes chunk by chunk

    def _make_context(self, n_ctx: int, n_batch: int, threads: int, n_seq: int, flash_attn: bool, kv_f32: bool) -> None:
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx, cparams.n_batch, cparams.n_ubatch = n_ctx, n_batch, n_batch
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.n_seq_max = n_seq
        cparams.kv_unified = n_seq > 1  # sequences may then share a prompt prefix's cells
        cparams.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO if flash_attn
                                   else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        if kv_f32:  # exact-parity runs: no F16 rounding in the KV cache
            cparams.type_k = cparams.type_v = 0  # GGML_TYPE_F32
        self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        self.n_batch, self.n_seq, self.threads = n_batch, n_seq, threads
        self._settings = (n_ctx, n_batch, threads, flash_attn, kv_f32)

    def _batches(self, n_seq: int) -> None:
        self.n_ctx = llama_cpp.llama_n_ctx(self.ctx)
        self._decoder = BatchDecoder(self.ctx, self.n_ctx, self.n_batch, self.n_embd, self.n_vocab, n_seq)
        self._pos = self._decoder.pos  # the same list: decoding advances it, reset and truncate rewind it
        self._prefix: list[list[int] | None] = [None] * n_seq  # the token chunk kept in KV at each sequence's start

    def fork(self, n_seq: int) -> "LLM":
        """A second context over the same loaded weights (and LoRA adapter) with `n_seq` parallel sequences, for
        answering several people in one batch. Close it before this LLM; it never frees the shared model."""
        other = object.__new__(LLM)
        other.lock = threading.RLock()
        other._forks = []
        other.model, other._owns_model = self.model, False
        n_ctx, n_batch, threads, flash_attn, kv_f32 = self._settings
        other._make_context(n_ctx, n_batch, threads, n_seq, flash_attn, kv_f32)
        if not other.ctx:
            raise LLMError(f"llama.cpp could not create a context of {n_seq} sequences")
        other.adapter, other._shared_adapter = None, self.adapter
        if self.adapter is not None:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self.adapter)
            if llama_cpp.llama_set_adapters_lora(other.ctx, adapters, 1, (ctypes.c_float * 1)(1.0)) != 0:
                other.close()
                raise LLMError("llama.cpp could not apply the LoRA adapter to a second context")
        other.vocab, other.n_embd, other.n_vocab = self.vocab, self.n_embd, self.n_vocab
        other._batches(n_seq)
        other.path, other.table = self.path, self.table
        self._forks.append(other)  # closed before the model they share is freed
        return other

    def _apply_adapter(self, path: str | os.PathLike) -> None:
        self.adapter = llama_cpp.llama_adapter_lora_init(self.model, os.fsencode(path))
        if not self.adapter:
            self.close()
            raise LLMError(f"llama.cpp could not load the LoRA adapter {path} onto this model (another base model?)")
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self.adapter)
        if llama_cpp.llama_set_adapters_lora(self.ctx, adapters, 1, (ctypes.c_float * 1)(1.0)) != 0:
            self.close()
            raise LLMError(f"llama.cpp could not apply the LoRA adapter {path}")

    def close(self) -> None:
        with self.lock:
            for fork in getattr(self, "_forks", []):
                fork.close()
            if getattr(self, "ctx", None):
                if hasattr(self, "_decoder"):
                    self._decoder.free()
                    del self._decoder
                llama_cpp.llama_free(self.ctx)
                self.ctx = None
            if getattr(self, "adapter", None):
                llama_cpp.llama_adapter_lora_free(self.adapter)
                self.adapter = None
            if getattr(self, "model", None):
                if getattr(self, "_owns_model", True):
                    llama_cpp.llama_model_free(self.model)
                self.model = None

    def __del__(self):
        if hasattr(self, "lock"):
            self.close()

    # --- the public surface: each call holds the lock ----------------------------------------------------------

    def reset(self, seq_id: int | None = None) -> None:
        """Forget the KV cache of `seq_id` (None: of every sequence): its next chunk goes at position 0."""
        with self.lock:
            self._reset(seq_id)

    def n_past(self, seq_id: int = 0) -> int:
        """Positions sequence `seq_id` holds in the KV cache (where its next chunk goes)."""
        return self._pos[seq_id]

    def truncate(self, seq_id: int, pos: int) -> None:
        """Drop sequence `seq_id`'s cells from position `pos` on: its next chunk goes at `pos`."""
        with self.lock:
            self._truncate(seq_id, pos)

    def eval_chunks(self, chunks: Sequence[Chunk], seq_id: int = 0, n_logits: int | None = 1) -> np.ndarray:
        """Append chunks to sequence `seq_id` in order, at most n_batch positions per llama_decode (llama.cpp aborts
        past it). → float32 logits [n_logits, n_vocab] of the last n_logits positions (None: every position; 0: none,
        and the output layer does not run)."""
        with self.lock:
            return self._decoder.eval(chunks, seq_id, n_logits)

    def feed(self, chunks: Sequence[Chunk], all_logits: bool = False) -> np.ndarray:
        """eval_chunks in the form export's parity check calls it: logits [n_vocab] of the last position, or
        [positions, n_vocab] of every one."""
        rows = self.eval_chunks(chunks, n_logits=None if all_logits else 1)
        return rows if all_logits else rows[0]

    def prefill(self, chunks: Sequence[Chunk], seq_id: int = 0, n_logits: int = 1, keep_prefix: bool = True
                ) -> np.ndarray:
        """The prompt of a new answer in one batch: token chunks become rows of the token table, so the whole
        prompt is one llama_decode. With `keep_prefix` a leading token chunk equal to the previous call's stays in KV
        (the static start of the prompt is evaluated once per stream). → logits [n_logits, n_vocab] of its end."""
        with self.lock:
            return self._prefill(chunks, seq_id, n_logits, keep_prefix)

    def share_prefix(self, tokens: Sequence[int], n_seqs: int) -> None:
        """Sequences 0 … n_seqs−1 start a new answer with `tokens`: evaluated once on sequence 0 (kept from the last
        call when the same) and copied to the others (in a unified KV cache they share its cells: no compute)."""
        with self.lock:
            tokens = [int(t) for t in tokens]
            if not 1 <= n_seqs <= self.n_seq:
                raise LLMError(f"{n_seqs} sequences asked of a context of {self.n_seq}")
            if self._prefix[0] == tokens and self._pos[0] >= len(tokens):
                self._truncate(0, len(tokens))
            else:
                self._reset(0)
                if tokens:
                    self._decoder.eval([tokens], 0, 0)
                self._prefix[0] = tokens
            memory = llama_cpp.llama_get_memory(self.ctx)
            for seq in range(1, n_seqs):
                self._reset(seq)
                if tokens:
                    llama_cpp.llama_memory_seq_cp(memory, 0, seq, 0, len(tokens))
                self._pos[seq], self._prefix[seq] = len(tokens), tokens

    def eval_batch(self, parts: Sequence[tuple[int, Chunk]], logits: bool = True) -> np.ndarray:
        """Append each (seq_id, chunk) to its own sequence, all in one llama_decode (several when they exceed
        n_batch; a part is never split across two). Chunks are all token ids or all [n, n_embd] rows.
        → logits [len(parts), n_vocab] of each part's last position (logits=False: [0, n_vocab], no output layer)."""
        with self.lock:
            return self._decoder.eval_parts(parts, logits)

    # --- under the lock --------------------------------------------------------------------------------------

    def _reset(self, seq_id: int | None) -> None:
        memory = llama_cpp.llama_get_memory(self.ctx)
        for seq in range(self.n_seq) if seq_id is None else [seq_id]:
            self._pos[seq], self._prefix[seq] = 0, None
        if seq_id is None:
            llama_cpp.llama_memory_clear(memory, True)
        else:
            llama_cpp.llama_memory_seq_rm(memory, seq_id, -1, -1)

    def _truncate(self, seq_id: int, pos: int) -> None:
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(self.ctx), seq_id, pos, -1)
        self._pos[seq_id] = pos
        if self._prefix[seq_id] is not None and pos < len(self._prefix[seq_id]):
            self._prefix[seq_id] = None

    def _prefill(self, chunks: Sequence[Chunk], seq_id: int, n_logits: int, keep_prefix: bool) -> np.ndarray:
        chunks = [c for c in chunks if len(c)]
        rest = self._reuse_prefix(chunks, seq_id) if keep_prefix else chunks
        if not keep_prefix:
            self._reset(seq_id)
        if sum(len(c) for c in rest) < max(n_logits, 1):  # logits wanted of the kept prefix, which were not kept
            self._reset(seq_id)
            rest = chunks
        if self.table is not None and len(rest) > 1:
            rest = [self.table.join(rest)]
        return self._decoder.eval(rest, seq_id, n_logits)

    def _reuse_prefix(self, chunks: list, seq_id: int) -> list:
        """Keep the KV state of the first chunk when it is the same token list as last time."""
        first = list(chunks[0]) if chunks and not isinstance(chunks[0], np.ndarray) else None
        if first is not None and self._prefix[seq_id] == first and self._pos[seq_id] >= len(first):
            self._truncate(seq_id, len(first))
            return chunks[1:]
        self._reset(seq_id)
        if first is not None and len(chunks) > 1:
            self._decoder.eval([first], seq_id, 0)
            self._prefix[seq_id] = first
            return chunks[1:]
        return chunks
