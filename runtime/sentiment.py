"""Labels → sentiment on the device: a small lexicon of common emotion words (our own table).

This is a quick per-window summary for integrators. Benchmark scores use the official emotion-wheel
mapping instead (benchmarks/emotion_wheel.py), which needs the official tables.
"""

from __future__ import annotations

POSITIVE = frozenset("""
happy happiness joy joyful glad cheerful content contented pleased delighted excited excitement elated
amused amusement playful proud pride confident hopeful hope optimistic grateful thankful relieved relief
calm peaceful relaxed serene satisfied loving love affectionate caring trusting interested curious
enthusiastic inspired energetic triumphant admiring admiration tender friendly warm accepted respected
""".split())
NEGATIVE = frozenset("""
sad sadness unhappy sorrowful depressed lonely hurt disappointed disappointment gloomy miserable grief
angry anger mad furious annoyed irritated frustrated frustration hostile bitter resentful rage outraged
afraid fear fearful scared frightened terrified anxious anxiety worried worry nervous tense stressed
panicked insecure helpless disgusted disgust contempt contemptuous ashamed shame guilty guilt embarrassed
jealous envious bored tired exhausted confused upset hateful skeptical suspicious sarcastic mocking
disapproving disapproval repelled awful
""".split())


def sentiment(labels: list[str]) -> str:
    """"positive" | "negative" | "neutral" by the majority of known words; unknown words do not count."""
    score = sum((w in POSITIVE) - (w in NEGATIVE) for label in labels for w in label.lower().split())
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"
