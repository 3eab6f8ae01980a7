"""Clues per modality, each from a specialised model, as MER-Caption's pipeline gathers them before the merge.

    visual:   the face track — every sampled frame's largest face (runtime/face.py, as the stream crops it), read by
              the FER2013 expression network through the bundle's own vision graph (runtime/encode.py), which gives
              the seven class probabilities (or ends with the seven logits) → per-frame probabilities → phrases
    acoustic: speech or not (silero-vad), the words (the given subtitle, else Whisper tiny.en), prosody (eGeMAPS v02
              functionals from afx-audio, MIT: pitch, loudness, voiced segments per second, pauses) → phrases
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from runtime.encode import encoder_inputs
from runtime.encoders import Encoders
from runtime.manifest import VISION, AUDIO, FUSION, read_manifest
from runtime.expression import FER_CLASSES, expression_probabilities
from runtime.media import read_clip
from runtime.preprocess import frame_indices
from runtime.speech import Transcriber, VoiceActivity
from train.errors import TrainError

TRACK_FRAMES = 16  # frames read per clip: 4 per second on a 4 s clip
SAMPLE_RATE = 16000
EXPRESSION_MIN = 0.35  # a class counts in a frame from this probability (FER2013's chance level is 0.14)
FACE_PHRASES = {"angry": "frowns angrily", "disgust": "looks disgusted", "fear": "looks afraid",
                "happy": "smiles", "sad": "looks sad", "surprise": "looks surprised", "neutral": "keeps a straight face"}
FACE_SENTIMENT = {"angry": -1, "disgust": -1, "fear": -1, "sad": -1, "happy": 1, "surprise": 0, "neutral": 0}


class AnnotateError(TrainError):
    pass


@dataclass
class VisualClues:
    times: list[float]  # seconds, per read frame
    face: list[bool]  # a face was found in the frame
    probabilities: list[list[float]]  # per frame with a face: FER_CLASSES probabilities (empty list without)
    phrases: list[str]

    @property
    def face_fraction(self) -> float:
        return float(np.mean(self.face)) if self.face else 0.0

    def mean(self) -> dict[str, float]:
        rows = [p for p in self.probabilities if p]
        return dict(zip(FER_CLASSES, np.mean(rows, axis=0).round(3).tolist())) if rows else {}


@dataclass
class AcousticClues:
    speech_fraction: float | None  # None: no voice-activity model
    words: str
    words_from: str  # "subtitle" | "whisper" | "none"
    prosody: dict = field(default_factory=dict)  # eGeMAPS functionals used here
    phrases: list[str] = field(default_factory=list)


@dataclass
class MediaInfo:
    duration_s: float
    video_s: float | None
    audio_s: float | None
    has_audio: bool


class FaceReader:
    """The expression network as the device runs it: a bundle whose vision graph gives FER2013's seven probabilities
    (the embedded default's does) or ends with its seven logits."""

    def __init__(self, bundle: str | Path, threads: int | None = None):
        manifest = read_manifest(bundle, verify_hashes=False)
        if manifest.dims.vision_dim < len(FER_CLASSES) or not manifest.preprocessing.face_crop:
            raise AnnotateError(f"{bundle}: its vision graph is not the expression network (face crops, FER logits last)")
        self.prep = manifest.preprocessing
        paths = [Path(bundle) / manifest.files[r].path for r in (VISION, AUDIO, FUSION)]
        self.encoders = Encoders(*paths, threads=threads)

    def read(self, frames: np.ndarray, times: list[float]) -> VisualClues:
        """Frames [N, H, W, 3] uint8 RGB at `times` → the track. Where the detector finds no face the whole frame is
        read, as the stream does (a close-up still shows the expression)."""
        inputs = encoder_inputs(list(frames), np.zeros(0, np.float32), self.prep, face_crop=True)
        p = expression_probabilities(self.encoders.encode_frames(inputs.pixels))
        found = [bool(x) for x in (inputs.faces or [False] * len(frames))]
        probs = [row.round(4).tolist() for row in p]
        return VisualClues(times, found, probs, face_phrases(times, found, probs))


def face_phrases(times: list[float], found: list[bool], probs: list[list[float]]) -> list[str]:
    """Per-frame readings → short phrases with timing: "smiles from 1.2 s", "looks sad until 0.8 s"."""
    if not probs:
        return ["nothing is in view"]
    # the frame's expression: its top class when confident, else neutral; runs of one expression become phrases,
    # a run of one frame is noise unless it is all there is
    labels = [FER_CLASSES[int(np.argmax(p))] if max(p) >= EXPRESSION_MIN else "neutral" for p in probs]
    runs: list[list] = []
    for t, label in zip(times, labels):
        if runs and runs[-1][0] == label:
            runs[-1][2] = t
            runs[-1][3] += 1
        else:
            runs.append([label, t, t, 1])
    long_runs = [r for r in runs if r[3] > 1] or runs
    start, end = times[0], times[-1]
    phrases = []
    for label, t0, t1, _ in long_runs:
        if label == "neutral" and len(long_runs) > 1:
            continue  # the straight face between expressions says nothing
        if len(long_runs) == 1 or (t0 <= start and t1 >= end):
            phrases.append(f"{FACE_PHRASES[label]} throughout")
        elif t0 <= start:
            phrases.append(f"{FACE_PHRASES[label]} until {t1:.1f} s")
        elif t1 >= end:
            phrases.append(f"{FACE_PHRASES[label]} from {t0:.1f} s")
        else:
            phrases.append(f"{FACE_PHRASES[label]} from {t0:.1f} s to {t1:.1f} s")
    if sum(found) < len(found):
        phrases.append(f"a face is detected in {sum(found)} of {len(found)} frames")
    return phrases or ["keeps a straight face throughout"]


PROSODY_KEYS = {  # eGeMAPS v02 functional → our short name
    "F0semitoneFrom27.5Hz_sma3nz_amean": "pitch_st",
    "F0semitoneFrom27.5Hz_sma3nz_stddevNorm": "pitch_var",
    "loudness_sma3_amean": "loudness",
    "VoicedSegmentsPerSec": "voiced_per_s",
    "MeanUnvoicedSegmentLength": "pause_s",
    "loudnessPeaksPerSec": "syllables_per_s",
}


def prosody_features(waveform: np.ndarray) -> dict[str, float]:
    """16 kHz mono → the eGeMAPS functionals of PROSODY_KEYS (afx-audio); {} when too short or the package is absent."""
    if importlib.util.find_spec("afx_audio") is None or waveform.size < SAMPLE_RATE // 2:
        return {}
    from afx_audio import egemaps

    values = egemaps(np.asarray(waveform, np.float32), SAMPLE_RATE)
    return {short: round(float(values[key]), 3) for key, short in PROSODY_KEYS.items() if np.isfinite(values[key])}


def prosody_phrases(p: dict[str, float]) -> list[str]:
    """Features → words on the scales a listener uses; thresholds from adult speech (a 27.5 Hz semitone scale:
    30 st ≈ 155 Hz), not fitted to any data."""
    if not p:
        return []
    out = []
    pitch = p.get("pitch_st", 0)
    if pitch:
        out.append("a high-pitched voice" if pitch > 34 else "a low voice" if pitch < 27 else "a mid-pitched voice")
    if p.get("pitch_var", 0):
        out.append("lively intonation" if p["pitch_var"] > 0.08 else "flat intonation")
    loud = p.get("loudness", 0)
    out.append("speaks loudly" if loud > 0.75 else "speaks quietly" if loud < 0.45 else "moderate loudness")
    rate = p.get("syllables_per_s", 0)
    if rate:
        out.append("fast" if rate > 3.2 else "slow" if rate < 2.2 else "at an even pace")
    if p.get("pause_s", 0) > 0.3:
        out.append("with long pauses")
    return out


def read_media(path: Path, frames: int = TRACK_FRAMES) -> tuple[np.ndarray, list[float], np.ndarray, MediaInfo]:
    """→ (frames [N, H, W, 3] uint8, their times in s, 16 kHz mono waveform, stream durations)."""
    import av

    clip = read_clip(path, frames, SAMPLE_RATE)
    step = clip.duration_s / max(clip.num_video_frames, 1)
    times = [round(i * step, 2) for i in frame_indices(clip.num_video_frames, frames)][: len(clip.frames)]
    video_s = audio_s = None
    with av.open(str(path)) as container:  # each stream's own length: audio and video out of step shows here
        for stream in container.streams:
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
                if stream.type == "video":
                    video_s = seconds
                elif stream.type == "audio":
                    audio_s = seconds
    return clip.frames, times, clip.waveform, MediaInfo(clip.duration_s, video_s, audio_s, clip.has_audio)


class AcousticReader:
    """Voice activity, words and prosody of a 16 kHz waveform. Whisper loads on first need (a subtitle spares it)."""

    def __init__(self, threads: int = 1):
        self.threads = threads
        try:
            self.vad = VoiceActivity(threads)
        except ImportError:
            self.vad = None  # recorded as unknown: the speech filter then cannot drop the clip
        self._asr = None

    def read(self, waveform: np.ndarray, subtitle: str | None) -> AcousticClues:
        speech = self.vad.speech_fraction(waveform, SAMPLE_RATE) if self.vad is not None and waveform.size else (
            0.0 if self.vad is not None else None)
        if subtitle is not None:
            words, source = subtitle.strip(), "subtitle"
        elif speech:
            if self._asr is None:
                self._asr = Transcriber(self.threads)
            words, source = self._asr.transcribe(waveform, SAMPLE_RATE), "whisper"
        else:
            words, source = "", "none"
        voiced = waveform[: waveform.size]
        prosody = prosody_features(voiced) if speech is None or speech > 0.05 else {}
        phrases = (["speaks for most of the clip" if speech > 0.5 else "speaks briefly"] if speech and speech > 0.05
                   else ["nothing is said"] if speech is not None else [])
        return AcousticClues(speech, words, source, prosody, phrases + prosody_phrases(prosody))


def clues_dict(visual: VisualClues, acoustic: AcousticClues, media: MediaInfo) -> dict:
    return {"visual": asdict(visual) | {"face_fraction": round(visual.face_fraction, 3), "mean": visual.mean()},
            "acoustic": asdict(acoustic), "media": asdict(media)}
