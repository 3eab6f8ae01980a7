import json

import pytest

from runtime.manifest import MANIFEST_NAME, BundleError, read_manifest


def _edit(bundle, **changes):
    path = bundle / MANIFEST_NAME
    raw = json.loads(path.read_text())
    for key, value in changes.items():
        raw[key] = value
    path.write_text(json.dumps(raw))


def test_a_fresh_bundle_reads_back(bundle_copy):
    manifest = read_manifest(bundle_copy)
    assert set(manifest.files) >= {"vision", "audio", "fusion", "llm"}
    assert manifest.dims.llm_width == 256 and manifest.preprocessing.num_frames == 8
    assert manifest.prompt.placeholders == ("<MultiHere>", "<AudioHere>", "<FaceHere>")


def test_unknown_format_version_is_refused(bundle_copy):
    _edit(bundle_copy, format_version=99)
    with pytest.raises(BundleError, match="format version 99"):
        read_manifest(bundle_copy)


def test_damaged_file_is_refused(bundle_copy):
    onnx = bundle_copy / "fusion.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        read_manifest(bundle_copy)
    read_manifest(bundle_copy, verify_hashes=False)  # the size still matches: only the hash can tell


def test_missing_file_and_missing_manifest(bundle_copy, tmp_path):
    (bundle_copy / "audio.onnx").unlink()
    with pytest.raises(BundleError, match="audio is missing"):
        read_manifest(bundle_copy)
    with pytest.raises(BundleError, match="no manifest.json"):
        read_manifest(tmp_path)


def test_malformed_manifest(bundle_copy):
    (bundle_copy / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_manifest(bundle_copy)
    _edit_raw = {"format_version": 1}
    (bundle_copy / MANIFEST_NAME).write_text(json.dumps(_edit_raw))
    with pytest.raises(BundleError, match="missing or has a malformed field"):
        read_manifest(bundle_copy)


def test_a_template_whose_placeholders_the_manifest_does_not_list_is_refused(bundle_copy):
    raw = json.loads((bundle_copy / MANIFEST_NAME).read_text())
    prompt = dict(raw["prompt"], template=raw["prompt"]["template"].replace("<FaceHere>", "<FrameHere>"))
    _edit(bundle_copy, prompt=prompt)
    with pytest.raises(BundleError, match="<FrameHere>"):
        read_manifest(bundle_copy)


def test_an_unknown_audio_normalisation_is_refused(bundle_copy):
    raw = json.loads((bundle_copy / MANIFEST_NAME).read_text())
    _edit(bundle_copy, preprocessing=dict(raw["preprocessing"], audio_norm_scope="batch"))
    with pytest.raises(BundleError, match="audio_norm_scope"):
        read_manifest(bundle_copy)


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.onnx", "sub/../../outside.onnx"])
def test_a_file_path_outside_the_bundle_is_refused(bundle_copy, path):
    raw = json.loads((bundle_copy / MANIFEST_NAME).read_text())
    raw["files"]["fusion"]["path"] = path
    _edit(bundle_copy, files=raw["files"])
    with pytest.raises(BundleError, match="inside the bundle"):
        read_manifest(bundle_copy)


def test_a_link_that_leads_out_of_the_bundle_is_refused(bundle_copy, tmp_path):
    outside = tmp_path / "elsewhere.onnx"
    outside.write_bytes((bundle_copy / "fusion.onnx").read_bytes())
    (bundle_copy / "fusion.onnx").unlink()
    (bundle_copy / "fusion.onnx").symlink_to(outside)
    with pytest.raises(BundleError, match="leads outside the bundle"):
        read_manifest(bundle_copy)


@pytest.mark.parametrize("section, key, value", [("preprocessing", "num_frames", 0), ("preprocessing", "sample_rate", -1),
                                                 ("preprocessing", "clip_seconds", "2"), ("dims", "llm_width", 0)])
def test_numbers_out_of_range_are_refused_by_name(bundle_copy, section, key, value):
    raw = json.loads((bundle_copy / MANIFEST_NAME).read_text())
    _edit(bundle_copy, **{section: dict(raw[section], **{key: value})})
    with pytest.raises(BundleError, match=f"{section}.{key}"):
        read_manifest(bundle_copy)


def test_an_unlisted_file_such_as_external_data_is_refused(bundle_copy):
    (bundle_copy / "README.md").write_text("notes for people are fine")
    read_manifest(bundle_copy)
    (bundle_copy / "vision.onnx.data").write_bytes(b"\0" * 64)
    with pytest.raises(BundleError, match="vision.onnx.data"):
        read_manifest(bundle_copy)


def test_engines_are_checked_against_their_list(tmp_path):
    from runtime.manifest import check_engines

    engine = tmp_path / "vision.fp16.engine"
    engine.write_bytes(b"engine bytes")
    with pytest.raises(BundleError, match="engines.json"):
        check_engines(tmp_path, [engine])
    from quant.tensorrt import record_engines

    record_engines(tmp_path, [engine])
    check_engines(tmp_path, [engine])
    engine.write_bytes(b"engine bytez")
    with pytest.raises(BundleError, match="damaged or was replaced"):
        check_engines(tmp_path, [engine])
