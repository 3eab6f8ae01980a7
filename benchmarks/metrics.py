"""MER-UniBench metrics, each averaged over the five official wheels (see emotion_wheel.py).

- hit rate for single-label basic emotion: samples whose ground truth maps to nothing are skipped;
- sentiment weighted F1 (sklearn): ground-truth valence 0 dropped, both sides binarised at > 0, so a
  neutral prediction counts as negative;
- OV set-level precision / recall / F: empty ground truth skipped, empty prediction scores P = R = 0,
  F from the averaged P and R (not a per-sample F).

Labels become a sentiment through the project's one lexicon (runtime/sentiment.py; the wheel roots for words it
lacks) instead of the official second LLM call. `cosine` compares a variant's features with the reference's (the
accuracy gate, the latency benchmark).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from benchmarks.emotion_wheel import WHEELS, EmotionWheel
from runtime.sentiment import word_sentiment

def hit_rate(wheel: EmotionWheel, gt: Mapping[str, str], pred: Mapping[str, Sequence[str]]) -> dict:
    """gt: name → one label; pred: name → label list. → {"score", "per_wheel", "n"}."""
    per_wheel, counts = [], []
    for k in WHEELS:
        hits = []
        for name, label in gt.items():
            g = wheel.map_labels([label], k)
            if not g:
                continue
            p = wheel.map_labels(pred.get(name, []), k)
            hits.append(1.0 if g & p else 0.0)
        per_wheel.append(float(np.mean(hits)) if hits else 0.0)
        counts.append(len(hits))
    return {"score": float(np.mean(per_wheel)), "per_wheel": dict(zip(WHEELS, per_wheel)), "n": counts}


def labels_to_sentiment(wheel: EmotionWheel, labels: Sequence[str]) -> int:
    """+1 / −1 / 0: the sum of the labels' sentiments from the one lexicon (runtime/sentiment.py). A label the
    lexicon does not know takes the sentiment of the level-1 roots it maps to on the five wheels; the wheel
    mapping itself is left as it is (its artefacts, such as `fear` → `happy` on wheel 2, would flip a known word)."""
    total = 0
    for label in labels:
        value = word_sentiment(label)
        if value is None:
            roots = [wheel.map_word(label, k) for k in WHEELS]
            value = int(np.sign(sum(word_sentiment(r) or 0 for r in roots if r)))
        total += value
    return int(np.sign(total))


def sentiment_f1(gt_valence: Mapping[str, float], pred_sentiment: Mapping[str, int]) -> dict:
    """gt: name → continuous valence; pred: name → +1 / 0 / −1. → {"score" (weighted F1), "accuracy", "n"}."""
    from sklearn.metrics import accuracy_score, f1_score

    names = [n for n, v in gt_valence.items() if float(v) != 0]
    if not names:
        return {"score": 0.0, "accuracy": 0.0, "n": 0}
    y_true = [float(gt_valence[n]) > 0 for n in names]
    y_pred = [pred_sentiment.get(n, 0) > 0 for n in names]
    return {"score": float(f1_score(y_true, y_pred, average="weighted")),
            "accuracy": float(accuracy_score(y_true, y_pred)), "n": len(names)}


def ov_scores(wheel: EmotionWheel, gt: Mapping[str, Sequence[str]], pred: Mapping[str, Sequence[str]]) -> dict:
    """OV set-level scores. → {"score" (F), "precision", "recall", "per_wheel", "n"}."""
    rows, counts = [], []
    for k in WHEELS:
        precision, recall = [], []
        for name, labels in gt.items():
            g = wheel.map_labels(labels, k)
            if not g:
                continue
            p = wheel.map_labels(pred.get(name, []), k)
            if not p:
                precision.append(0.0)
                recall.append(0.0)
            else:
                precision.append(len(g & p) / len(p))
                recall.append(len(g & p) / len(g))
        P = float(np.mean(precision)) if precision else 0.0
        R = float(np.mean(recall)) if recall else 0.0
        F = 2 * P * R / (P + R) if P + R > 0 else 0.0
        rows.append((F, P, R))
        counts.append(len(precision))
    F, P, R = (float(x) for x in np.mean(rows, axis=0))
    return {"score": F, "precision": P, "recall": R, "per_wheel": dict(zip(WHEELS, [r[0] for r in rows])), "n": counts}


def best_epoch(scores: Mapping[str, float]) -> tuple[str, float]:
    """The checkpoint with the highest primary score (the first one on ties, as np.argmax)."""
    keys = list(scores)
    i = int(np.argmax([scores[k] for k in keys]))
    return keys[i], float(scores[keys[i]])


def benchmark_mean(primary: Mapping[str, float]) -> float:
    """Unweighted mean of the per-dataset primary scores, × 100 as the paper reports it."""
    return float(np.mean(list(primary.values())) * 100) if primary else 0.0


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine similarity of matching rows: a, b [N, ...] (each row flattened), in float64. Two all-zero rows
    agree (1.0): a window without a face has its vision features zeroed on both sides, and must not count as a loss."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    rows = (a * b).sum(-1) / (na * nb + 1e-12)
    return float(np.where((na == 0) & (nb == 0), 1.0, rows).mean())
