"""Emotion words → valence and arousal in [−1, 1], and the family (dominant emotion) each word belongs to.

Positions follow Russell's circumplex (J. A. Russell, "A circumplex model of affect", Journal of Personality
and Social Psychology 39(6), 1980): affect words lie on a circle whose angle θ from the pleasure axis gives
valence = cos θ and arousal = sin θ. The paper's abstract names eight reference points — pleasure 0°,
excitement 45°, arousal 90°, distress 135°, displeasure 180°, depression 225°, sleepiness 270°, relaxation
315° — and those angles are the only numbers taken from it (facts, tabulated here by hand). Which of them each
word sits at (or half-way between two, at 22.5° steps) is this project's own placement, guided by where the
paper's 28 scaled adjectives fall; it is released with the project under its licence. Every word lies on the
unit circle: a label says which emotion, not how strong. Neutral words lie at the centre.

Families are the level-1 roots of the official AffectGPT emotion wheel 2 (the Feeling Wheel; Apache-2.0 tables
of the AffectGPT release, shipped unchanged in benchmarks/data/emotion-wheel/): a word that wheel holds keeps its
root there (so `excited` is `surprised`, as the wheel has it); the others were placed by the same reading.

A word missing here takes its sentiment from runtime/sentiment.py: valence ±1 or 0, arousal 0, no family.
"""

from __future__ import annotations

import math

from runtime.sentiment import word_sentiment

FAMILIES = ("happy", "surprised", "angry", "fearful", "disgusted", "sad", "bad", "neutral")

# angle in degrees → family → words (`None`: the centre, valence = arousal = 0)
_TABLE: dict[float | None, dict[str, str]] = {
    0: {"happy": """happy happiness joy joyful glad pleased cheerful cheery merry gleeful amused amusement playful
        cheeky loving love affectionate caring tender kind friendly warm grateful thankful appreciative appreciated
        proud pride confident optimistic hopeful hope accepted respected valued trusting good pleasant positive fun
        funny smiling laughing joking successful powerful courageous brave free creative intimate sensitive
        compassionate sympathetic touched moved admiring admiration faithful nurturing important"""},
    22.5: {"happy": "delighted blissful"},
    45: {"happy": "elated enthusiastic thrilled ecstatic euphoric jubilant overjoyed inspired triumphant lively "
                  "vibrant interested curious inquisitive aroused",
         "surprised": "excited excitement energetic eager amazed awe"},
    67.5: {"surprised": "astonished"},
    90: {"surprised": "surprised surprise startled shocked alarmed", "bad": "tense"},
    112.5: {"angry": "angry anger mad furious infuriated rage enraged irate livid outraged hostile aggressive",
            "fearful": "afraid fear fearful scared frightened terrified panicked panic terror threatened",
            "disgusted": "horrified appalled"},
    135: {"angry": "annoyed irritated frustrated frustration jealous envious hateful hatred hate indignant provoked "
                   "agitated impatient betrayed violated",
          "fearful": "anxious anxiety worried worry nervous distressed overwhelmed insecure uneasy apprehensive dread "
                     "restless persecuted",
          "bad": "stressed pressured rushed busy"},
    157.5: {"angry": "bitter resentful critical dismissive disrespected ridiculed humiliated offended upset",
            "disgusted": "judgmental disapproving disapproval embarrassed"},
    180: {"disgusted": """disgusted disgust contempt contemptuous repelled revolted nauseated revulsion loathing
                          detestable awful disappointed disappointment hesitant""",
          "angry": "skeptical sceptical suspicious sarcastic mocking dissatisfied displeased",
          "sad": "hurt pained aggrieved troubled concerned guilty guilt ashamed shame regretful remorseful sorry "
                 "vulnerable fragile powerless victimised miserable",
          "fearful": "inadequate inferior worthless weak excluded exposed rejected",
          "surprised": "dismayed disillusioned",
          "bad": "bad negative"},
    225: {"sad": """sad sadness unhappy sorrowful depressed lonely gloomy grief grieving heartbroken despair hopeless
                    desperate crying tearful melancholy wistful isolated abandoned empty""",
          "fearful": "helpless insignificant",
          "angry": "withdrawn distant numb"},
    247.5: {"bad": "bored apathetic unmotivated"},
    270: {"bad": "tired sleepy exhausted weary unfocused"},
    315: {"happy": """calm calmness relaxed peaceful serene tranquil content contented satisfied relieved relief
                      comfortable safe secure fulfilled"""},
    None: {"neutral": "neutral unsure puzzled", "bad": "indifferent", "surprised": "confused perplexed"},
}


def _build() -> dict[str, tuple[float, float, str]]:
    out = {}
    for angle, families in _TABLE.items():
        v, a = (0.0, 0.0) if angle is None else (math.cos(math.radians(angle)), math.sin(math.radians(angle)))
        for family, words in families.items():
            for word in words.split():
                assert word not in out, word  # one place per word
                out[word] = (round(v, 3), round(a, 3), family)
    return out


WORDS: dict[str, tuple[float, float, str]] = _build()  # word → (valence, arousal, family)


def word_affect(label: str) -> tuple[float, float, str | None] | None:
    """(valence, arousal, family) of one label: the whole label, else its first word the table knows, else its
    sentiment (valence ±1 or 0, arousal 0, family None); None for a word with no known meaning."""
    text = label.lower().replace("-", " ").strip()
    if text in WORDS:
        return WORDS[text]
    for word in text.split():
        if word in WORDS:
            return WORDS[word]
    sign = word_sentiment(text)
    return None if sign is None else (float(sign), 0.0, None)


def labels_affect(labels: list[str]) -> tuple[float, float, dict[str, float]]:
    """A window's labels → (valence, arousal, family shares). The mean of the known labels' positions (two
    opposite labels cancel out); the shares sum to 1 over the families the labels name. No labels, or none
    known: the centre and {"neutral": 1}."""
    known = [x for x in map(word_affect, labels) if x is not None]
    if not known:
        return 0.0, 0.0, {"neutral": 1.0}
    v = sum(x[0] for x in known) / len(known)
    a = sum(x[1] for x in known) / len(known)
    named = [x[2] for x in known if x[2]]
    shares = {f: named.count(f) / len(named) for f in dict.fromkeys(named)} if named else {"neutral": 1.0}
    return round(v, 3), round(a, 3), shares
