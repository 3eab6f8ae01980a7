"""Text ↔ token ids with a GGUF's own vocabulary (llama.cpp's tokenizer): the runtime's, and training's for a GGUF
base model, so that both split text identically. Also the llama.cpp process set-up both need."""

from __future__ import annotations

import ctypes
import os
from typing import Sequence

import llama_cpp

from runtime.errors import EdgeError


class LLMError(EdgeError):
    pass


def discard_log(level, text, user_data):  # llama.cpp logs every load to stderr; the CLI prints JSON only
    pass


_quiet_log = llama_cpp.llama_log_callback(discard_log)
_backend_ready = False


def quiet_llama_logs() -> None:
    llama_cpp.llama_log_set(_quiet_log, ctypes.c_void_p(0))


def init_backend() -> None:
    """llama.cpp's once-per-process set-up."""
    global _backend_ready
    if not _backend_ready:
        llama_cpp.llama_backend_init()
        _backend_ready = True


class TextCodec:
    """Text ↔ ids over `self.vocab` (a llama_vocab pointer), which the subclass sets."""

    vocab = None

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

    def is_end(self, token: int) -> bool:
        """An end-of-generation token of this vocabulary (eos, eot, ...)."""
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))


class Vocab(TextCodec):
    """Only the vocabulary of a GGUF (no weights are loaded): tokenizing for training and export checks."""

    def __init__(self, path: str | os.PathLike):
        quiet_llama_logs()
        init_backend()
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
