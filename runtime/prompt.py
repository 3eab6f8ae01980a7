"""The reference prompt (Video-LLaMA style, not a chat template), its segments, the chunks the LLM takes (assembled
here once, for training and the device), and answer parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from runtime.manifest import AUDIO_PLACEHOLDER, FACE_PLACEHOLDER, FRAME_PLACEHOLDER, MULTI_PLACEHOLDER

# The released "face" model's prompt, with the three fused embeddings at the placeholders.
TEMPLATE = (
    "###Human: The audio and video merged info is: <Multi>" + MULTI_PLACEHOLDER + "</Multi>. "
    "The audio content is as follows: <Audio>" + AUDIO_PLACEHOLDER + "</Audio>. "
    "Meanwhile, we uniformly sample raw frames from the video and extract faces from these frames: "
    "<Video>" + FACE_PLACEHOLDER + "</Video>. "
    "The subtitle of this video is: <Subtitle>{subtitle}</Subtitle>. "
    "Now, please answer my question based on all the provided information. {question} ###Assistant: "
)
# The released "frame" model's prompt: raw frames, no face extractor (the same template otherwise).
FRAME_TEMPLATE = TEMPLATE.replace(
    "we uniformly sample raw frames from the video and extract faces from these frames: <Video>" + FACE_PLACEHOLDER,
    "we uniformly sample raw frames from the video: <Video>" + FRAME_PLACEHOLDER)
# The embedded default's prompt: the same parts in a third of the tokens (a 2-core device reads each one every window).
EDGE_TEMPLATE = (
    "Emotion of the person in a video. Voice and face: <Multi>" + MULTI_PLACEHOLDER + "</Multi>. Voice: <Audio>"
    + AUDIO_PLACEHOLDER + "</Audio>. Face: <Video>" + FACE_PLACEHOLDER + "</Video>. "
    "Subtitle: <Subtitle>{subtitle}</Subtitle>. {question} Answer: "
)
OV_QUESTION = "Please recognize all possible emotional states of the character."
DESCRIPTION_QUESTION = "Please infer the person's emotional state and provide your reasoning process."
OV_ANSWER_PREFIX = "The character's emotional state is "
STOP_TEXT = "###"

PLACEHOLDERS = (MULTI_PLACEHOLDER, AUDIO_PLACEHOLDER, FACE_PLACEHOLDER, FRAME_PLACEHOLDER)
_PLACEHOLDER_RE = re.compile("(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + ")")


# What a subtitle must not carry into the prompt: the template's turn separator and tags, its fields, the
# placeholders (each would forge prompt structure), and control characters.
_FORGERY_RE = re.compile(r"###|</?(?:Subtitle|Video|Audio|Multi)>|\{(?:subtitle|question)\}|<[A-Za-z]+Here>", re.I)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_SUBTITLE_CHARS = 20_000  # bounds the work on a pasted book; the context decides the rest (runtime/answer.py)


def sanitize_subtitle(text: str, max_chars: int = MAX_SUBTITLE_CHARS) -> str:
    """User text made safe for the prompt: bytes that are not UTF-8 become U+FFFD, control characters and
    template separators become spaces, whitespace is collapsed, and the length is capped."""
    try:
        text = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # surrogates that did not come from undecodable bytes
        text = str(text).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    text = _FORGERY_RE.sub(" ", _CONTROL_RE.sub(" ", text))
    return " ".join(text.split())[:max_chars]


def render(template: str, subtitle: str, question: str) -> str:
    """The prompt text: the template's two fields filled in one pass, so a field's value is never read as a
    field; the subtitle is sanitised (it is user text: it must never become an embedding slot or a turn)."""
    values = {"subtitle": sanitize_subtitle(subtitle), "question": question}
    return re.sub(r"\{(subtitle|question)\}", lambda m: values[m.group(1)], template)


def segments(template: str, subtitle: str, question: str) -> list[str]:
    """The rendered prompt split at the placeholders: [text, placeholder, text, ...]; text parts may be empty."""
    return _PLACEHOLDER_RE.split(render(template, subtitle, question))


def template_placeholders(template: str) -> tuple[str, str, str]:
    """The placeholders of a template in the order the fusion emits their rows: multi, audio, then the visual
    one (<FaceHere> for the face model, <FrameHere> for the frame model)."""
    visual = FRAME_PLACEHOLDER if FRAME_PLACEHOLDER in template else FACE_PLACEHOLDER
    return (MULTI_PLACEHOLDER, AUDIO_PLACEHOLDER, visual)


def placeholder_spans(rows: tuple[int, ...] = (1, 1, 1),
                      placeholders: tuple[str, ...] = (MULTI_PLACEHOLDER, AUDIO_PLACEHOLDER, FACE_PLACEHOLDER)
                      ) -> dict[str, slice]:
    """Which fused rows each placeholder takes: fusion emits multi, audio, visual rows in that order, `rows[i]`
    of each (1 each for the attention fusion, the query counts for a Q-Former)."""
    spans, start = {}, 0
    for name, n in zip(placeholders, rows):
        spans[name] = slice(start, start + n)
        start += n
    return spans


def is_placeholder(segment: str) -> bool:
    return segment in PLACEHOLDERS


@dataclass(frozen=True)
class Slot:
    """A placeholder's place in the prompt: rows [start, stop) of the fused rows [R, H] go there."""

    placeholder: str
    start: int
    stop: int

    def __len__(self) -> int:  # positions it takes, as a token chunk's len is
        return self.stop - self.start


def prompt_chunks(template: str, subtitle: str, question: str, tokenize: Callable[[str], Sequence[int]],
                  rows: tuple[int, ...] = (1, 1, 1), placeholders: tuple[str, ...] | None = None,
                  bos_id: int | None = None) -> list:
    """The prompt as the LLM takes it, in order: a list of token ids for each run of text (bos, when given, joined to
    the first) and a Slot for each placeholder, `rows[i]` rows for the i-th of `placeholders` (the template's own by
    default). `tokenize`: text → ids of the LLM's vocabulary (llama.cpp's on the device, the training tokenizer in
    training; the export checks that both split the prompt alike)."""
    spans = placeholder_spans(rows, placeholders or template_placeholders(template))
    chunks: list = [[bos_id]] if bos_id is not None else []
    for seg in segments(template, subtitle, question):
        if is_placeholder(seg):
            chunks.append(Slot(seg, spans[seg].start, spans[seg].stop))
        elif seg:
            ids = list(tokenize(seg))
            if chunks and isinstance(chunks[-1], list):
                chunks[-1] = chunks[-1] + ids
            else:
                chunks.append(ids)
    return chunks


def fill_slots(chunks: list, fused) -> list:
    """Each Slot replaced by its rows of `fused` [R, H] (numpy: [n, H] rows the LLM takes as they are)."""
    return [fused[c.start:c.stop] if isinstance(c, Slot) else c for c in chunks]


def positions(chunks: list) -> list:
    """One entry per prompt position: a token id, or (placeholder, k) where the k-th fused row of it goes."""
    out: list = []
    for c in chunks:
        out.extend([(c.placeholder, k) for k in range(len(c))] if isinstance(c, Slot) else c)
    return out


def ov_answer(labels: list[str]) -> str:
    """Training target of the OV question; an empty list is `neutral`, as in the reference."""
    return OV_ANSWER_PREFIX + (", ".join(labels) if labels else "neutral") + "."


def clean_answer(text: str, stop_text: str = STOP_TEXT) -> str:
    """Cut a generated answer at the stop text and trim it."""
    cut = text.find(stop_text)
    return (text if cut < 0 else text[:cut]).strip()


_STATE_RE = re.compile(r"emotional states?\s+(?:is|are|was|were|seems? to be|appears? to be)\s*:?\s*(.*)", re.I | re.S)
_SPLIT_RE = re.compile(r",|;|/|\band\b|\bor\b", re.I)


_OV_RE = re.compile(re.escape(OV_ANSWER_PREFIX) + r"([a-z][a-z' -]*(?:, ?[a-z][a-z' -]*)*)\.?", re.I)


def parse_ov_answer(answer: str) -> list[str] | None:
    """Labels of an answer that is exactly the OV sentence ("The character's emotional state is a, b, c."),
    nothing before or after it; None for any other answer (a description, a hedge), which a judge must read."""
    match = _OV_RE.fullmatch(clean_answer(answer))
    if not match:
        return None
    labels: list[str] = []
    for part in match.group(1).split(","):
        word = part.strip().lower()
        if word and word not in labels:
            labels.append(word)
    return labels


def parse_labels(answer: str) -> list[str]:
    """Labels of an answer that states them ("... emotional state is a, b, c.") → ["a", "b", "c"], also at the
    end of a description (the stream's per-window summary). Lower-cased, de-duplicated in order; [] when no
    sentence states them. Scoring uses the strict `parse_ov_answer` instead."""
    match = _STATE_RE.search(clean_answer(answer))
    if not match:
        return []
    body = match.group(1)
    body = re.split(r"\.(?:\s|$)", body, maxsplit=1)[0]  # up to the end of the sentence
    labels: list[str] = []
    for part in _SPLIT_RE.split(body.strip().strip("[]")):
        word = part.strip().strip(" .'\"[]").lower()
        if word and word not in labels:
            labels.append(word)
    return labels
