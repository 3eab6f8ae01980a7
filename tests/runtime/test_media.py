import numpy as np
import pytest

from runtime.media import MediaError, read_clip
from train.synth import write_clip


def test_read_clip_samples_frames_and_trims_aac_padding(clip_path):
    clip = read_clip(clip_path, num_frames=8, sample_rate=16000)
    assert clip.frames.shape == (8, 120, 160, 3) and clip.frames.dtype == np.uint8
    assert clip.num_video_frames == 75 and clip.has_audio
    assert abs(clip.duration_s - 5.0) < 0.1
    assert abs(clip.waveform.size - 5 * 16000) <= 16000 * 0.1
    assert 0.01 < np.abs(clip.waveform).max() < 1.5  # the voice is there, not silence or garbage
    # frames are distinct samples over time, not one frame repeated
    assert not np.array_equal(clip.frames[0], clip.frames[-1])


def test_clip_without_audio(media_dir):
    path = write_clip(media_dir / "silent.mp4", seconds=1.0, audio=False)
    clip = read_clip(path)
    assert not clip.has_audio and clip.waveform.size == 0
    assert clip.frames.shape[0] == 8  # 15 frames → 8 sampled


def test_missing_and_corrupt_files_raise_media_error(tmp_path):
    with pytest.raises(MediaError, match="not found"):
        read_clip(tmp_path / "nope.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(MediaError):
        read_clip(bad)


def test_a_long_clip_keeps_only_the_audio_its_clips_use(tmp_path):
    """--clip on a long recording: the samples the 8 clips take are decoded as always; the rest is never stored."""
    from benchmarks.faults import write_media
    from runtime.manifest import Preprocessing
    from runtime.media import LONG_AUDIO_S, read_audio, read_clip_for
    from runtime.preprocess import audio_clips, clip_spans

    prep = Preprocessing(image_size=64)
    path = write_media(tmp_path / "long.mp4", LONG_AUDIO_S + 10, LONG_AUDIO_S + 10, size=(32, 32), fps=2)
    clip = read_clip_for(path, prep)
    full, _ = read_audio(path, 16000, clip.duration_s)
    np.testing.assert_array_equal(audio_clips(clip.waveform, prep), audio_clips(full, prep))
    kept = np.zeros(clip.waveform.size, bool)
    for start, end in clip_spans(clip.waveform.size, prep):
        kept[start:end] = True
    assert not clip.waveform[~kept].any() and full[~kept].any()  # the rest was never written


def test_frames_are_reduced_as_they_are_decoded(tmp_path):
    """A large picture is not kept whole: the long side is the stream reader's bound (the pixels a stream window
    gets), unless the bundle's image size needs more of the short side."""
    from benchmarks.faults import write_media
    from runtime.sources import _bounded

    path = write_media(tmp_path / "big.mp4", 1.0, 0, size=(2560, 1440), fps=4)
    clip = read_clip(path, num_frames=2)
    assert clip.frames.shape == (2, 720, 1280, 3)
    import av

    with av.open(str(path)) as c:  # the same pixels as the stream reader's frame
        first = _bounded(next(c.decode(video=0))).to_ndarray(format="rgb24")
    np.testing.assert_array_equal(clip.frames[0], first)
    assert read_clip(path, num_frames=2, image_size=1024).frames.shape == (2, 1024, 1820, 3)
    assert read_clip(path, num_frames=2, image_size=2048).frames.shape == (2, 1440, 2560, 3)  # never enlarged


def test_a_long_clip_without_a_stream_duration_keeps_only_the_audio_its_clips_use(tmp_path):
    """MKV states no per-stream duration (MPEG-TS may not either): the rule holds all the same."""
    import av

    from benchmarks.faults import write_media
    from runtime.manifest import Preprocessing
    from runtime.media import LONG_AUDIO_S, read_clip_for
    from runtime.preprocess import clip_spans

    prep = Preprocessing(image_size=64)
    path = write_media(tmp_path / "long.mkv", LONG_AUDIO_S + 10, LONG_AUDIO_S + 10, size=(32, 32), fps=2)
    with av.open(str(path)) as c:
        assert not c.streams.audio[0].duration  # the case at hand
    clip = read_clip_for(path, prep)
    kept = np.zeros(clip.waveform.size, bool)
    for start, end in clip_spans(clip.waveform.size, prep):
        kept[start:end] = True
    assert abs(clip.waveform.size - (LONG_AUDIO_S + 10) * 16000) < 16000
    assert clip.waveform[kept].any() and not clip.waveform[~kept].any()
