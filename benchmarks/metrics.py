"""MER-UniBench metrics, each averaged over the five official wheels (see emotion_wheel.py).

- hit rate for single-label basic emotion: samples whose ground truth maps to nothing are skipped;
- sentiment weighted F1 (sklearn): ground-truth valence 0 dropped, both sides binarised at > 0, so a
  neutral prediction counts as negative;
- OV set-level precision / recall / F: empty ground truth skipped, empty prediction scores P = R = 0,
  F from the averaged P and R (not a per-sample F).

Labels become a sentiment through the level-1 roots (ROOT_SENTIMENT) instead of the official second LLM call.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from benchmarks.emotion_wheel import WHEELS, EmotionWheel

# Level-1 roots of the five wheels → sentiment. `surprised` carries none; wheel 4's `genius` root holds
# interested / in awe / focused / confident, so it counts as positive.
ROOT_SENTIMENT = {
    "happy": 1, "joyful": 1, "joy": 1, "peaceful": 1, "powerful": 1, "genius": 1,
    "sad": -1, "mad": -1, "angry": -1, "anger": -1, "scared": -1, "fearful": -1, "fear": -1,
    "disgusted": -1, "disgust": -1, "bad": -1,
    "surprised": 0,
}


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
    """+1 / −1 / 0 by the sum of root sentiments over every label on every wheel."""
    total = 0
    for k in WHEELS:
        for label in labels:
            root = wheel.map_word(label, k)
            total += ROOT_SENTIMENT.get(root, 0) if root else 0
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
