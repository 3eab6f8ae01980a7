"""One encode path: the gate, INT8 calibration and training see exactly the inputs the runtime feeds."""

import dataclasses

import numpy as np
import pytest

from runtime.manifest import read_manifest, write_manifest
from runtime.media import read_clip
from runtime.pipeline import Pipeline


@pytest.fixture
def face_crop_bundle(bundle_copy, monkeypatch):
    """The tiny bundle marked as trained on face crops (as the released AffectGPT is), with a detector that
    always finds the same face, so that cropping visibly changes the inputs."""
    pytest.importorskip("cv2", reason="face crops need OpenCV (extra face)")
    from runtime.face_detector import BlazeFace

    # the detector itself, so the single-person crop and the people step's tracker both see it
    monkeypatch.setattr(BlazeFace, "detect", lambda self, rgb: [((rgb.shape[1] // 4, rgb.shape[0] // 4,
                                                                  rgb.shape[1] // 3, rgb.shape[0] // 3), 0.9)])
    manifest = read_manifest(bundle_copy)
    manifest.preprocessing = dataclasses.replace(manifest.preprocessing, face_crop=True)
    write_manifest(bundle_copy, manifest)
    return bundle_copy


def test_gate_and_calibration_see_the_runtime_inputs_of_a_face_crop_bundle(face_crop_bundle, clip_path):
    from benchmarks.gate import gate_inputs
    from quant.onnx import calibration_inputs

    pipeline = Pipeline(face_crop_bundle)
    prep = pipeline.manifest.preprocessing
    clip = read_clip(clip_path, prep.num_frames, prep.sample_rate)
    fed = pipeline.inputs(clip)
    assert fed.faces == [True] * prep.num_frames
    assert not np.allclose(fed.pixels, pipeline.inputs(clip, face_crop=False).pixels)  # the crop is not a no-op

    gated = gate_inputs(face_crop_bundle, [clip_path])[clip_path.stem]
    np.testing.assert_array_equal(gated.pixels, fed.pixels)
    np.testing.assert_array_equal(gated.clips, fed.clips)

    feeds = calibration_inputs(face_crop_bundle, [clip_path])
    np.testing.assert_array_equal(feeds["vision"][0][pipeline.encoders.vision.inputs[0]], fed.pixels)
    np.testing.assert_array_equal(feeds["audio"][0][pipeline.encoders.audio.inputs[0]], fed.clips)
    features = pipeline.features(clip)
    np.testing.assert_allclose(feeds["fusion"][0][pipeline.encoders.fusion.inputs[0]][0], features.face, rtol=1e-6)
    pipeline.close()


def test_training_media_go_through_the_same_path(face_crop_bundle, clip_path):
    from train.data import Sample, load_media

    pipeline = Pipeline(face_crop_bundle)
    prep = pipeline.manifest.preprocessing
    fed = pipeline.inputs(read_clip(clip_path, prep.num_frames, prep.sample_rate))
    pixels, clips, _ = load_media(Sample(name="c", media=str(clip_path)), prep)
    np.testing.assert_array_equal(pixels, fed.pixels)
    np.testing.assert_array_equal(clips, fed.clips)
    pipeline.close()


@pytest.mark.parametrize("scope", ["clip", "video"])
def test_stream_windows_are_encode_of_their_frames_and_audio(face_crop_bundle, media_dir, scope):
    """The stream's feature reuse is a lookup around encode(): each window's fused rows equal encode() of that
    window's own frames and waveform, with faces cropped, under either audio normalisation scope."""
    import os

    from runtime.encode import encode, encoder_inputs, rgb_array
    from runtime.outputs import JsonLines
    from runtime.sources import media_file
    from runtime.stream import Stream, StreamOptions
    from train.synth import write_clip

    t = np.arange(9 * 16000) / 16000
    voice = (np.sin(2 * np.pi * 220 * t) * 0.002 * 10 ** (t / 3)).astype(np.float32)  # louder clip by clip
    clip = write_clip(media_dir / f"reuse-{scope}.mp4", seconds=9.0, seed=7, waveform=voice)
    manifest = read_manifest(face_crop_bundle)
    manifest.preprocessing = dataclasses.replace(manifest.preprocessing, audio_norm_scope=scope)
    write_manifest(face_crop_bundle, manifest)
    pipeline = Pipeline(face_crop_bundle)
    stream = Stream(pipeline, [media_file(str(clip))], StreamOptions(warmup=False), JsonLines(open(os.devnull, "w")))
    seen, stream_encode = [], stream.encode
    stream.encode = lambda w: seen.append((w, stream_encode(w))) or seen[-1][1]
    stream.run()
    assert len(seen) == 4
    prep = pipeline.manifest.preprocessing
    for window, (fused, _, face) in seen:
        direct = encode(pipeline.encoders, encoder_inputs([rgb_array(f) for f in window.frames], window.waveform, prep))
        np.testing.assert_allclose(fused, direct.fused, rtol=1e-5, atol=1e-5)
        assert face is True
    pipeline.close()


def test_the_bundle_says_how_wide_the_face_crop_is(face_crop_bundle, clip_path):
    """preprocessing.face_margin decides the crop on the device and in training; a bundle that does not say it has
    the margin every bundle before the field was trained with."""
    from runtime.face import FaceDetector, crop_box
    from runtime.manifest import BundleError, Preprocessing
    from runtime.preprocess import pixel_values
    from train.data import Sample, load_media

    assert Preprocessing().face_margin == 0.25
    with pytest.raises(BundleError, match="face_margin"):
        Preprocessing(face_margin=3.0)
    wide = Pipeline(face_crop_bundle)
    prep = wide.manifest.preprocessing
    clip = read_clip(clip_path, prep.num_frames, prep.sample_rate)
    manifest = read_manifest(face_crop_bundle)
    manifest.preprocessing = dataclasses.replace(manifest.preprocessing, face_margin=0.1)
    write_manifest(face_crop_bundle, manifest)
    tight = Pipeline(face_crop_bundle)
    fed = tight.inputs(clip)
    assert not np.allclose(fed.pixels, wide.inputs(clip).pixels)
    detector = FaceDetector()
    by_hand = [crop_box(f, detector.largest(f), 0.1) for f in clip.frames]
    np.testing.assert_array_equal(fed.pixels, pixel_values(by_hand, tight.manifest.preprocessing))
    pixels, _, _ = load_media(Sample(name="c", media=str(clip_path)), tight.manifest.preprocessing)
    np.testing.assert_array_equal(pixels, fed.pixels)
    wide.close()
    tight.close()
