"""Labels → sentiment: one lexicon of emotion words, the project's only sentiment map.

The stream uses it for each window's `sentiment`; the benchmark (benchmarks/metrics.py) uses it too, and
turns to the official emotion wheels only for a word the lexicon does not know (the sentiment of the wheel
roots that word maps to). The official procedure asks a second LLM call instead; a table is repeatable.
`surprised` carries no sentiment.
"""

from __future__ import annotations

POSITIVE = frozenset("""
happy happiness joy joyful glad cheerful content contented pleased delighted excited excitement elated
amused amusement playful proud pride confident hopeful hope optimistic grateful thankful relieved relief
calm peaceful relaxed serene satisfied loving love affectionate caring trusting interested curious
enthusiastic inspired energetic triumphant admiring admiration tender friendly warm accepted respected
ecstatic thrilled jubilant blissful euphoric merry gleeful overjoyed eager appreciative valued powerful
courageous brave secure safe comfortable kind compassionate sympathetic tranquil fulfilled lively cheery
successful genius awe amazed pleasant positive good fun funny touched moved joking laughing smiling
""".split())
NEGATIVE = frozenset("""
sad sadness unhappy sorrowful depressed lonely hurt disappointed disappointment gloomy miserable grief
angry anger mad furious annoyed irritated frustrated frustration hostile bitter resentful rage outraged
afraid fear fearful scared frightened terrified anxious anxiety worried worry nervous tense stressed
panicked insecure helpless disgusted disgust contempt contemptuous ashamed shame guilty guilt embarrassed
jealous envious bored tired exhausted confused upset hateful skeptical suspicious sarcastic mocking
disapproving disapproval repelled awful bad hopeless despair desperate grieving heartbroken distressed
troubled uneasy concerned dismayed horrified shocked threatened vulnerable rejected abandoned isolated
humiliated regretful remorseful sorry pained aggrieved indignant irate enraged livid aggressive critical
dissatisfied displeased impatient agitated restless overwhelmed weary apprehensive dread panic terror
revulsion loathing hatred hate negative crying tearful melancholy wistful
""".split())
NEUTRAL = frozenset("surprised surprise neutral indifferent calmness unsure puzzled".split())


def word_sentiment(label: str) -> int | None:
    """+1 / −1 / 0 for an emotion word or short phrase (its known words vote), None when no word is known."""
    words = label.lower().replace("-", " ").split()
    votes = sum((w in POSITIVE) - (w in NEGATIVE) for w in words)
    if votes:
        return 1 if votes > 0 else -1
    return 0 if any(w in POSITIVE or w in NEGATIVE or w in NEUTRAL for w in words) else None


def polarity(labels: list[str]) -> int:
    """+1 / −1 / 0 by the majority of the labels' sentiments; unknown words do not count."""
    total = sum(word_sentiment(label) or 0 for label in labels)
    return (total > 0) - (total < 0)


def sentiment(labels: list[str]) -> str:
    """"positive" | "negative" | "neutral"."""
    return {1: "positive", -1: "negative", 0: "neutral"}[polarity(labels)]
