"""A window in which the detector finds no face, for a bundle that says so (preprocessing.no_face "absent"), is
answered as the model answers with vision taken away (the ablation's zero features), on the clip path and in the
stream, not from a full frame read as a face; a bundle trained on full frames ("frame") keeps them. The shipped
default says "absent" and was trained so."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import ROOT

DEFAULT = ROOT / "runtime" / "demo" / "bundle"


@pytest.fixture(scope="module")
def faceless_clip(tmp_path_factory):
    """4 s of a smooth gradient (nothing a face detector finds) with a voiced tone."""
    pytest.importorskip("cv2", reason="face crops need OpenCV (extra face)")
    from train.synth import write_media

    yy, xx = np.mgrid[0:240, 0:320]
    frames = [np.stack([xx * 255 // 320, yy * 255 // 240, np.full_like(xx, 90 + i)], -1).astype(np.uint8)
              for i in range(60)]
    t = np.arange(4 * 16000) / 16000
    wave = (0.1 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return write_media(tmp_path_factory.mktemp("noface") / "noface.mp4", frames, wave, fps=15)


@pytest.fixture(scope="module")
def pipeline():
    """The shipped default, which says that a window without a face has vision absent."""
    if not (DEFAULT / "manifest.json").is_file():
        pytest.skip("no shipped default bundle in runtime/demo")
    from runtime.pipeline import Pipeline

    p = Pipeline(DEFAULT)
    assert p.manifest.preprocessing.face_crop and p.manifest.preprocessing.no_face == "absent"
    yield p
    p.close()


def test_unseen_face_zeroes_only_windows_without_any_face():
    from runtime.encode import unseen_face

    face = np.ones((4, 3), np.float32)
    np.testing.assert_array_equal(unseen_face(face, [False] * 4, "frame"), face)  # a bundle trained on full frames
    assert not unseen_face(face, [False] * 4).any()
    assert not unseen_face(face, []).any()
    np.testing.assert_array_equal(unseen_face(face, [False, True, False, False]), face)
    np.testing.assert_array_equal(unseen_face(face, None), face)  # faces not cropped: nothing was looked for


def test_clip_without_a_face_is_answered_as_with_vision_absent(pipeline, faceless_clip):
    from runtime.media import read_clip_for

    clip = read_clip_for(faceless_clip, pipeline.manifest.preprocessing)
    features = pipeline.features(clip)
    assert features.faces is not None and not any(features.faces)
    absent = pipeline.encoders.fuse(np.zeros((len(clip.frames), pipeline.manifest.dims.vision_dim), np.float32),
                                    features.audio)
    np.testing.assert_array_equal(features.fused, absent)
    assert pipeline.answer_file(faceless_clip).labels == pipeline.answer(absent).labels


@pytest.mark.slow  # the default's LLM over a streamed clip
def test_stream_window_without_a_face_says_so_and_is_answered_as_with_vision_absent(pipeline, faceless_clip, tmp_path):
    from runtime.encode import encode, encoder_inputs, rgb_array
    from runtime.outputs import JsonLines
    from runtime.sources import media_file
    from runtime.stream import Stream, StreamOptions

    out = tmp_path / "windows.jsonl"
    with open(out, "w") as f:
        stream = Stream(pipeline, [media_file(str(faceless_clip))], StreamOptions(warmup=False), JsonLines(f))
        seen, stream_encode = [], stream.encode
        stream.encode = lambda w: seen.append((w, stream_encode(w))) or seen[-1][1]
        stream.run()
        stream.records.close()  # the writer thread has written every record
    records = [r for r in map(json.loads, out.read_text().splitlines()) if "window" in r and "labels" in r]
    assert seen and len(records) == len(seen)
    prep = pipeline.manifest.preprocessing
    for (window, (fused, _, face)), record in zip(seen, records):
        assert face is False and record["face"] is False
        audio = encode(pipeline.encoders, encoder_inputs([rgb_array(f) for f in window.frames], window.waveform, prep)).audio
        absent = pipeline.encoders.fuse(np.zeros((prep.num_frames, pipeline.manifest.dims.vision_dim), np.float32), audio)
        np.testing.assert_allclose(fused, absent, rtol=1e-5, atol=1e-5)
        assert record["labels"] == pipeline.answer(absent).labels
