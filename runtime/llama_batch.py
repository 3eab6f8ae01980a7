"""The llama_batch plumbing of one llama.cpp context: token ids or embedding rows packed into reusable llama_batch
structs, at most n_batch positions per llama_decode, each sequence's next position advanced, logits rows copied out.
runtime/llm.py owns one per context and holds its lock around every call."""

from __future__ import annotations

import ctypes
from typing import Sequence, Union

import llama_cpp
import numpy as np

from runtime.vocab import LLMError

Chunk = Union[Sequence[int], np.ndarray]  # token ids, or [n, n_embd] float32 rows


class BatchDecoder:
    """Two batches (token ids; embedding rows) of n_batch positions and `pos`, the next position of each of n_seq
    sequences. The owner rewinds `pos` itself when it drops KV cells."""

    def __init__(self, ctx, n_ctx: int, n_batch: int, n_embd: int, n_vocab: int, n_seq: int):
        self.ctx, self.n_ctx, self.n_batch, self.n_seq = ctx, n_ctx, n_batch, n_seq
        self.n_embd, self.n_vocab = n_embd, n_vocab
        self.tokens = llama_cpp.llama_batch_init(n_batch, 0, n_seq)
        self.embeds = llama_cpp.llama_batch_init(n_batch, n_embd, n_seq)
        self.pos = [0] * n_seq

    def free(self) -> None:
        """Before the context is freed."""
        llama_cpp.llama_batch_free(self.tokens)
        llama_cpp.llama_batch_free(self.embeds)

    def eval(self, chunks: Sequence[Chunk], seq_id: int, n_logits: int | None) -> np.ndarray:
        """Chunks appended to one sequence in order, split at n_batch → logits [n_logits, n_vocab] of its last
        positions (None: every position)."""
        chunks = [c for c in chunks if len(c)]
        if not chunks:
            raise LLMError("nothing to decode")
        if not 0 <= seq_id < self.n_seq:
            raise LLMError(f"sequence {seq_id} outside this context's {self.n_seq}")
        for chunk in chunks:
            if isinstance(chunk, np.ndarray) and (chunk.ndim != 2 or chunk.shape[1] != self.n_embd):
                raise LLMError(f"embedding rows of shape {list(chunk.shape)} do not fit the LLM width {self.n_embd}")
        total = sum(len(c) for c in chunks)
        wanted = total if n_logits is None else n_logits
        if not 0 <= wanted <= total:
            raise LLMError(f"logits of {wanted} positions asked of {total}")
        if self.pos[seq_id] + total > self.n_ctx:
            left = self.n_ctx - self.pos[seq_id]
            raise LLMError(f"prompt of {total} positions does not fit the context ({left} left)")
        rows, done = [], 0
        for chunk in chunks:
            for start in range(0, len(chunk), self.n_batch):
                end = min(start + self.n_batch, len(chunk))
                first = max(total - wanted - done, 0)  # the first position of this call whose logits are kept
                self._decode(chunk, start, end, seq_id, first)
                rows.extend(self._logits(i) for i in range(first, end - start))
                done += end - start
        return np.stack(rows) if rows else np.zeros((0, self.n_vocab), np.float32)

    def _decode(self, chunk: Chunk, start: int, end: int, seq_id: int, logits_from: int) -> None:
        """One llama_decode of chunk[start:end] at the sequence's next positions; logits from call index logits_from."""
        is_embd = isinstance(chunk, np.ndarray)
        batch = self.embeds if is_embd else self.tokens
        n = end - start
        batch.n_tokens = n
        if is_embd:
            rows = np.ascontiguousarray(chunk[start:end], dtype=np.float32)
            ctypes.memmove(batch.embd, rows.ctypes.data, rows.nbytes)
        pos = self.pos[seq_id]
        for i in range(n):
            if not is_embd:
                batch.token[i] = int(chunk[start + i])
            batch.pos[i] = pos + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq_id
            batch.logits[i] = i >= logits_from
        rc = llama_cpp.llama_decode(self.ctx, batch)
        if rc != 0:
            raise LLMError(f"llama_decode failed with code {rc} at position {pos}")
        self.pos[seq_id] += n

    def eval_parts(self, parts: Sequence[tuple[int, Chunk]], logits: bool) -> np.ndarray:
        """Each (seq_id, chunk) appended to its own sequence, as few llama_decode calls as n_batch allows, a part
        never split → logits [len(parts), n_vocab] of each part's last position (logits=False: none)."""
        parts = [(int(seq), c) for seq, c in parts if len(c)]
        if not parts:
            raise LLMError("nothing to decode")
        is_embd = isinstance(parts[0][1], np.ndarray)
        for seq, chunk in parts:
            if isinstance(chunk, np.ndarray) != is_embd:
                raise LLMError("one batch takes token ids or embedding rows, not both")
            if not 0 <= seq < self.n_seq:
                raise LLMError(f"sequence {seq} outside this context's {self.n_seq}")
            if len(chunk) > self.n_batch:
                raise LLMError(f"a part of {len(chunk)} positions exceeds the batch of {self.n_batch}")
            if is_embd and (chunk.ndim != 2 or chunk.shape[1] != self.n_embd):
                raise LLMError(f"embedding rows of shape {list(chunk.shape)} do not fit the LLM width {self.n_embd}")
            if self.pos[seq] + len(chunk) > self.n_ctx:
                raise LLMError(f"sequence {seq} does not fit the context")
        rows: list[np.ndarray] = []
        group: list[tuple[int, Chunk]] = []
        for part in parts + [None]:
            if part is None or (group and sum(len(c) for _, c in group) + len(part[1]) > self.n_batch):
                rows.extend(self._decode_parts(group, is_embd, logits))
                group = []
            if part is not None:
                group.append(part)
        return np.stack(rows) if rows else np.zeros((0, self.n_vocab), np.float32)

    def _decode_parts(self, group: list[tuple[int, Chunk]], is_embd: bool, logits: bool) -> list[np.ndarray]:
        batch = self.embeds if is_embd else self.tokens
        i, ends = 0, []
        for seq, chunk in group:
            n = len(chunk)
            if is_embd:
                rows = np.ascontiguousarray(chunk, dtype=np.float32)
                ctypes.memmove(ctypes.addressof(batch.embd.contents) + i * self.n_embd * 4, rows.ctypes.data,
                               rows.nbytes)
            for j in range(n):
                if not is_embd:
                    batch.token[i + j] = int(chunk[j])
                batch.pos[i + j] = self.pos[seq] + j
                batch.n_seq_id[i + j] = 1
                batch.seq_id[i + j][0] = seq
                batch.logits[i + j] = logits and j == n - 1
            i += n
            ends.append(i - 1)
        batch.n_tokens = i
        rc = llama_cpp.llama_decode(self.ctx, batch)
        if rc != 0:
            raise LLMError(f"llama_decode failed with code {rc} on a batch of {len(group)} sequences")
        for seq, chunk in group:
            self.pos[seq] += len(chunk)
        return [self._logits(e) for e in ends] if logits else []

    def _logits(self, i: int) -> np.ndarray:
        ptr = llama_cpp.llama_get_logits_ith(self.ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()
