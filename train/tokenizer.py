"""Byte-level BPE tokenizers with Qwen2's pre-tokenizer and the reference's special tokens.

Tiny presets train their own on a small text; the 7B preset reads Qwen's tokenizer.json. Either way the
placeholders are special tokens, bos is `<|im_start|>` and eos (= pad) is `<|im_end|>`, as in the reference.
"""

from __future__ import annotations

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from runtime.prompt import DESCRIPTION_QUESTION, OV_ANSWER_PREFIX, OV_QUESTION, STOP_TEXT, TEMPLATE

BOS_TOKEN = "<|im_start|>"
EOS_TOKEN = "<|im_end|>"
PLACEHOLDER_TOKENS = ("<ImageHere>", "<AudioHere>", "<FrameHere>", "<FaceHere>", "<MultiHere>")
SPECIAL_TOKENS = ("<|endoftext|>", BOS_TOKEN, EOS_TOKEN) + PLACEHOLDER_TOKENS

# Qwen2's split pattern; llama.cpp applies the same one for `tokenizer.ggml.pre = qwen2`.
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_EMOTION_WORDS = (
    "happy joyful excited content calm relaxed proud grateful hopeful amused surprised astonished confused "
    "curious sad lonely disappointed guilty ashamed hurt angry annoyed frustrated irritated furious bitter "
    "afraid scared worried anxious nervous tense disgusted contemptuous bored tired neutral sarcastic"
)
_SENTENCES = (
    "I can't believe you did that again.", "That's wonderful news, thank you so much!",
    "Leave me alone, I don't want to talk about it.", "Well, I guess it doesn't matter anymore.",
    "Are you serious? We won?", "Please, just tell me the truth.", "Fine. Whatever you say.",
    "In the text, the speaker says he is fine, but his voice trembles and his brows are knit.",
    "The tone is flat and slow, the mouth corners drop, and the gaze is lowered.",
)


def _training_text() -> list[str]:
    words = _EMOTION_WORDS.split()
    lines = [TEMPLATE, OV_QUESTION, DESCRIPTION_QUESTION, STOP_TEXT, *_SENTENCES]
    lines += [OV_ANSWER_PREFIX + ", ".join(words[i : i + 3]) + "." for i in range(0, len(words), 3)]
    return lines


def _add_specials(tokenizer: Tokenizer) -> Tokenizer:
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    # Text is always encoded as text (llama.cpp's parse_special=False): special tokens enter only by id.
    tokenizer.encode_special_tokens = True
    return tokenizer


def train_tiny_tokenizer(vocab_size: int, extra_text: list[str] = ()) -> Tokenizer:
    """A byte-level BPE trained on the prompt, the answer formats, a few sentences and `extra_text`
    (e.g. a corpus's subtitles and answers); deterministic."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_text() * 4 + list(extra_text), trainer=trainer)
    return _add_specials(tokenizer)


class GGUFTokenizer:
    """The vocabulary of a GGUF base model through llama.cpp's own tokenizer (runtime.vocab.Vocab), with the part of
    the `tokenizers.Tokenizer` interface training uses: training then splits text exactly as the device will. The
    placeholders never reach it (the prompt is split at them first)."""

    def __init__(self, base_key: str):
        from runtime.base_models import resolve
        from runtime.vocab import Vocab

        self.base_key = base_key
        self.vocab = Vocab(resolve(base_key))
        self.bos_token, self.eos_token = "<bos>", "<eos>"

    def encode(self, text: str, add_special_tokens: bool = False):
        return _Encoding(self.vocab.tokenize(text))

    def decode(self, ids) -> str:
        return self.vocab.detokenize(ids)

    def token_to_id(self, token: str) -> int:
        return self.vocab.special_id(token)

    def get_vocab_size(self) -> int:
        return self.vocab.n_vocab

    def save(self, path: str) -> None:
        import json

        with open(path, "w") as f:
            json.dump({"gguf_base": self.base_key}, f)


class _Encoding:
    def __init__(self, ids: list[int]):
        self.ids = ids


def load_tokenizer(path: str):
    """A tokenizer.json (e.g. Qwen2.5's) with the reference's placeholders added, or the GGUF base model's
    vocabulary that a checkpoint names ({"gguf_base": key})."""
    import json

    with open(path) as f:
        head = json.load(f)
    if isinstance(head, dict) and "gguf_base" in head:
        return GGUFTokenizer(head["gguf_base"])
    return _add_specials(Tokenizer.from_file(path))


def encode_text(tokenizer: Tokenizer, text: str) -> list[int]:
    """Plain text → ids; special-token strings inside user text stay text."""
    return tokenizer.encode(text, add_special_tokens=False).ids if text else []
