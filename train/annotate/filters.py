"""The filters that cut MER-Caption+ from MER-Caption, each decision with its reason.

Low level: the media must be usable (a face in most frames, speech, audio and video in step) and the description of
a normal length. High level: an ensemble of emotion classifiers votes on the sentiment; a clip is kept only where
their consensus agrees with the sentiment of the description's labels.

Voters (each says positive / negative / neutral, or abstains):
    face     the FER2013 expression network's mean reading of the clip (trained on FER2013 photographs)
    text     VADER's compound score on the words (a valence lexicon, MIT)
    prosody  hand-set rules on eGeMAPS functionals after the vocal-affect literature (high, lively, fast → positive;
             low, slow, paused, quiet → negative; loud and fast with flat pitch → negative); nothing is fitted
    bundle   the current bundle's own labels answer on the clip and its words, through runtime/sentiment.py
"""

from __future__ import annotations

from collections import Counter

from train.annotate.clues import FACE_SENTIMENT

MIN_FACE_FRACTION = 0.5
MIN_SPEECH_FRACTION = 0.1
MAX_AV_SKEW_S = 0.5
DESCRIPTION_WORDS = (25, 160)
SENTIMENTS = {1: "positive", -1: "negative", 0: "neutral"}


def low_level(clues: dict, description: str, ended: bool, min_face: float = MIN_FACE_FRACTION) -> list[dict]:
    """→ [{"filter", "passed", "reason"}] for face, speech, sync and length."""
    visual, acoustic, media = clues["visual"], clues["acoustic"], clues["media"]
    out = []
    found, n = sum(visual["face"]), len(visual["face"])
    out.append({"filter": "face", "passed": n > 0 and found / n >= min_face,
                "reason": f"a face in {found} of {n} frames (at least {min_face:.0%} needed)"})
    speech = acoustic["speech_fraction"]
    if speech is None:
        out.append({"filter": "speech", "passed": True, "reason": "no voice-activity model: not checked"})
    else:
        out.append({"filter": "speech", "passed": speech >= MIN_SPEECH_FRACTION,
                    "reason": f"speech in {speech:.0%} of the audio (at least {MIN_SPEECH_FRACTION:.0%} needed)"})
    if not media["has_audio"]:
        out.append({"filter": "sync", "passed": False, "reason": "no audio track"})
    elif media["video_s"] is None or media["audio_s"] is None:
        out.append({"filter": "sync", "passed": True, "reason": "stream lengths not stated: not checked"})
    else:
        skew = abs(media["video_s"] - media["audio_s"])
        out.append({"filter": "sync", "passed": skew <= MAX_AV_SKEW_S,
                    "reason": f"audio and video lengths differ by {skew:.2f} s (at most {MAX_AV_SKEW_S} s)"})
    words = len(description.split())
    lo, hi = DESCRIPTION_WORDS
    out.append({"filter": "length", "passed": ended and lo <= words <= hi,
                "reason": f"{words} words (between {lo} and {hi})" + ("" if ended else ", cut off at the token budget")})
    return out


def face_vote(clues: dict) -> str | None:
    mean = clues["visual"].get("mean") or {}
    if not mean:
        return None
    top = max(mean, key=mean.get)
    if mean[top] < 0.3:
        return None
    return SENTIMENTS[FACE_SENTIMENT[top]]


_vader = None


def text_vote(words: str) -> str | None:
    global _vader
    if not words.strip():
        return None
    if _vader is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        _vader = SentimentIntensityAnalyzer()
    compound = _vader.polarity_scores(words)["compound"]
    return "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"


def prosody_vote(prosody: dict) -> str | None:
    if not prosody:
        return None
    pitch, var = prosody.get("pitch_st", 30.0), prosody.get("pitch_var", 0.06)
    loud, rate, pause = prosody.get("loudness", 0.6), prosody.get("syllables_per_s", 2.7), prosody.get("pause_s", 0.2)
    if pitch > 33 and (var > 0.08 or rate > 3.2) and loud > 0.6:
        return "positive"
    if (pitch < 28 and (rate < 2.2 or pause > 0.3)) or (loud < 0.45 and rate < 2.2):
        return "negative"
    if loud > 0.8 and rate > 3.2 and var < 0.05 and pitch < 33:
        return "negative"
    return "neutral"


def consensus(votes: dict[str, str | None]) -> str | None:
    """The sentiment most voters give, None when voters tie or none votes."""
    counts = Counter(v for v in votes.values() if v is not None).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def high_level(votes: dict[str, str | None], described: str) -> dict:
    agreed = consensus(votes)
    if agreed is None:
        return {"filter": "consensus", "passed": False, "consensus": None,
                "reason": "the voters do not agree (" + ", ".join(f"{k} {v or '–'}" for k, v in votes.items()) + ")"}
    return {"filter": "consensus", "passed": agreed == described, "consensus": agreed,
            "reason": f"voters say {agreed}, the description {described}"}
