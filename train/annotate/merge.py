"""The merge: an instruct LLM turns the clues and the words into one description of the person's emotional state
(the release asked GPT-3.5; here a local GGUF), then OV labels come from the description with the release's
`reason_to_openset` instruction (runtime/task.py), grammar-constrained to words whose sentiment is known."""

from __future__ import annotations

from runtime.sentiment import NEGATIVE, NEUTRAL, POSITIVE, sentiment
from runtime.task import OPENSET_INSTRUCTION, openset_grammar
from train.annotate.chat import ChatModel

SYSTEM = "You are an expert in the field of emotions. You describe what a person in a video feels, from clues."
ASK = ("Clues about the person in a short video clip:\n"
       "- Face (an expression network, over time): {visual}.\n"
       "- Voice (speech detection and prosody): {acoustic}.\n"
       "- Words: {words}\n"
       "Describe the person's emotional state in four sentences: what the face shows, how the voice sounds, what "
       "the words mean, and, when they disagree, which to believe.")
DESCRIPTION_TOKENS = 200
LABEL_TOKENS = 48
LABEL_WORDS = sorted(POSITIVE | NEGATIVE | NEUTRAL)  # runtime/sentiment.py's lexicon: every label has a sentiment
CONCLUSION = " Considering all the clues, the character's emotional state is "


# The description's shape is the release's (video, audio, text, conclusion). A small model decoding greedily
# repeats itself without end: bounded sentences stop that. The conclusion stays free text — forced to lexicon words,
# greedy decoding takes whichever word starts with the likeliest token ("a" → "awful").
DESCRIPTION_GRAMMAR = (
    'root ::= "In the video, " sentence " In the audio, " sentence " In the text, " sentence "'
    + CONCLUSION + '" [^.\\n]{3,80} "."\n'
    'sentence ::= [^.\\n]{8,160} "."\n')


def merge_prompt(clues: dict) -> list[dict]:
    visual = "; ".join(clues["visual"]["phrases"]) or "no reading"
    acoustic = "; ".join(clues["acoustic"]["phrases"]) or "no reading"
    words = clues["acoustic"]["words"]
    words = f'"{words}"' if words else "nothing is said"
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": ASK.format(visual=visual, acoustic=acoustic, words=words)}]


class Merger:
    def __init__(self, chat: ChatModel):
        self.chat = chat
        self.vocabulary = set(LABEL_WORDS)

    def describe(self, clues: dict) -> tuple[str, bool]:
        """→ (description, whether the model ended it itself)."""
        return self.chat.reply(merge_prompt(clues), DESCRIPTION_TOKENS, DESCRIPTION_GRAMMAR)

    def labels(self, description: str) -> list[str]:
        """The instruction's list, constrained to lexicon words the description itself uses: a small model
        otherwise copies the instruction's own example ("[happy, sad, angry]") whatever the description says."""
        used = {w.strip(".,;:!?\"'()").lower() for w in description.split()} & self.vocabulary
        if not used:
            return []
        messages = [{"role": "user", "content": OPENSET_INSTRUCTION.format(answer=description.strip())}]
        text, _ = self.chat.reply(messages, LABEL_TOKENS, openset_grammar(used, max_labels=4))
        return list(dict.fromkeys(w.strip() for w in text.strip("[]").split(",") if w.strip()))


def description_sentiment(labels: list[str]) -> str:
    return sentiment(labels)
