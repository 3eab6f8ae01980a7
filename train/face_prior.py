"""Face features as a real face would give them: the expression network's seven probabilities drawn around what a
real face showing each corpus emotion reads as, in place of what the drawn face reads as.

Why: the expression network (FER2013 mini-Xception) learnt from real faces and reads real ones by their meaning
(a calm portrait: neutral 0.91; a broad smile: happy 0.98), but it reads the corpus's drawn faces by their drawing:
drawn neutral faces as fear (mean 0.42), drawn sad, angry and disgusted ones neutral 0.28–0.37
(`python -m benchmarks.real_faces` measures both). A model trained only on the drawn readings learns "neutral
means sad", and answers a calm real face `sad, lonely`. Training on a share of readings drawn from this table as
well teaches it what the network's classes mean, so a real face read right is answered by that reading, while the
other samples keep the drawn readings the held-out clips give.

The table is a modelling choice, not a measurement: each corpus emotion → the network's classes a real face showing
it falls in (FER2013's classes; disgust is rare there and real disgust often reads angry; worry reads fear, sad or
surprise; contentment is a neutral face with a little smile).
"""

from __future__ import annotations

import numpy as np

from runtime.expression import FER_CLASSES
REAL_READING = {
    "happy": {"happy": 1.0},
    "excited": {"happy": 0.7, "surprise": 0.3},
    "calm": {"neutral": 0.6, "happy": 0.4},
    "sad": {"sad": 1.0},
    "angry": {"angry": 1.0},
    "anxious": {"fear": 0.6, "sad": 0.2, "surprise": 0.2},
    "surprised": {"surprise": 1.0},
    "disgusted": {"disgust": 0.6, "angry": 0.4},
    "neutral": {"neutral": 1.0},
}
CONFIDENCE = (2.0, 12.0)  # Dirichlet weight of the profile: top class from about 0.4 (an unsure read) to 0.95
FLOOR = 0.2  # every class keeps a little mass, as the network's softmax does
FRAME_SPREAD = 200.0  # frames of one clip scatter a little around the clip's reading


def misread_neutral(emotion: str, reading: np.ndarray) -> bool:
    """Whether a drawn face's clip reading (its frames' mean [7]) is `neutral` on a face whose emotion no real face
    reads neutral: drawn angry, sad and disgusted faces read so. Trained on, these readings teach "a neutral reading
    means a negative face", and a calm, still person is answered `angry`. (Drawn neutral faces read fear; they are
    left as they are: they are the face of every clip whose emotion is in the voice or words alone.)"""
    top = FER_CLASSES[int(np.argmax(reading))]
    return top == "neutral" and emotion in REAL_READING and "neutral" not in REAL_READING[emotion]


def profile(emotion: str) -> np.ndarray:
    """[7] the classes a real face showing `emotion` reads as (sums to 1)."""
    weights = REAL_READING[emotion]
    return np.array([weights.get(c, 0.0) for c in FER_CLASSES], np.float64)


def real_reading(emotion: str, frames: int, rng: np.random.Generator) -> np.ndarray:
    """[frames, 7] float32 probabilities: one reading for the clip, drawn around the emotion's profile at a random
    confidence, and each frame near it."""
    clip = rng.dirichlet(FLOOR + rng.uniform(*CONFIDENCE) * profile(emotion))
    return np.stack([rng.dirichlet(FRAME_SPREAD * clip + 1e-3) for _ in range(frames)]).astype(np.float32)
