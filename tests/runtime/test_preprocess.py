import numpy as np
import pytest

from runtime.manifest import Preprocessing
from runtime.preprocess import audio_clips, clip_spans, frame_indices, pixel_values, resize_rgb


def test_frame_indices_floor_k_vlen_over_n():
    assert frame_indices(100, 8) == [0, 12, 25, 37, 50, 62, 75, 87]
    assert frame_indices(8, 8) == list(range(8))


def test_short_video_repeats_its_last_frame():
    assert frame_indices(3, 8) == [0, 1, 2, 2, 2, 2, 2, 2]


def test_empty_video_is_an_error():
    with pytest.raises(ValueError):
        frame_indices(0)


def test_clip_starts_evenly_spaced_over_duration_minus_clip():
    prep = Preprocessing()
    spans = clip_spans(9 * 16000, prep)  # 9 s: starts at k · 7/7 s
    assert [s for s, _ in spans] == [k * 16000 for k in range(8)]
    assert all(e - s == 32000 for s, e in spans)
    spans = clip_spans(10 * 16000, prep)  # 10 s: starts at k · 8/7 s
    assert spans[1] == (int(16000 * 8 / 7), int(16000 * 8 / 7) + 32000)
    assert spans[-1] == (8 * 16000, 10 * 16000)


def test_audio_shorter_than_a_clip_is_zero_padded_and_every_clip_is_the_same():
    prep = Preprocessing()
    wave = np.sin(np.linspace(0, 100, 8000)).astype(np.float32)
    clips = audio_clips(wave, prep)
    assert clips.shape == (8, 32000) and clips.dtype == np.float32
    assert np.allclose(clips, clips[0])
    assert abs(clips[0].mean()) < 1e-5 and abs(clips[0].std() - 1) < 1e-3


def test_audio_normalisation_can_be_off():
    prep = Preprocessing(audio_normalize=False)
    wave = np.full(40000, 0.5, np.float32)
    clips = audio_clips(wave, prep)
    assert np.allclose(clips, 0.5)


def test_pixel_values_resize_normalise_and_bgr():
    prep = Preprocessing(image_size=32)
    frames = np.zeros((2, 48, 64, 3), np.uint8)
    frames[..., 0] = 255  # pure red
    rgb = pixel_values(frames, prep)
    assert rgb.shape == (2, 3, 32, 32) and rgb.dtype == np.float32
    expected_r = (1 - prep.image_mean[0]) / prep.image_std[0]
    assert np.allclose(rgb[:, 0], expected_r, atol=1e-5)
    bgr = pixel_values(frames, Preprocessing(image_size=32, channel_order="bgr"))
    assert np.allclose(bgr[:, 2], (1 - prep.image_mean[2]) / prep.image_std[2], atol=1e-5)  # red moved to the last channel


def test_resize_rejects_non_images():
    with pytest.raises(ValueError):
        resize_rgb(np.zeros((4, 4), np.uint8), 8)


def test_video_scope_normalises_like_the_official_feature_extractor_call():
    """The reference calls Wav2Vec2FeatureExtractor on the [8, 32000] tensor of a video: one example, so one
    mean and variance over all 8 clips. Clips of different loudness tell per-clip and per-video apart."""
    pytest.importorskip("transformers")
    import torch
    from transformers import Wav2Vec2FeatureExtractor

    from runtime.manifest import Preprocessing
    from runtime.preprocess import audio_clips, cut_clips, normalize_clips

    rng = np.random.default_rng(0)
    waveform = np.concatenate([rng.normal(0, 0.02 * (k + 1), 8000) for k in range(10)]).astype(np.float32)  # 5 s
    prep = Preprocessing(audio_norm_scope="video")
    raw, _ = cut_clips(waveform, prep)
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True)
    official = extractor(torch.from_numpy(raw), sampling_rate=16000, return_tensors="pt").input_values[0].numpy()
    np.testing.assert_allclose(audio_clips(waveform, prep), official, atol=1e-6)
    per_clip = normalize_clips(raw, Preprocessing(audio_norm_scope="clip"))
    assert np.abs(per_clip - official).max() > 0.1  # quiet clips are amplified per clip, not per video
    np.testing.assert_allclose(per_clip.std(axis=1), 1.0, atol=1e-3)
