"""An untrusted bundle: every file the runtime reads is listed and hashed (ONNX external data included), its
numbers cannot add up to tens of GB, engines never come from it, and its strings cannot drive a terminal.

The bundles here are tiny graphs written with `onnx.helper` and a stand-in LLM file that no check reaches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from runtime.manifest import (MANIFEST_NAME, BundleError, Dims, Manifest, Preprocessing, PromptSpec,  # noqa: E402
                              file_entry, read_manifest, write_manifest)

DV, DA, H = 4, 5, 6
PREP = dict(num_frames=4, image_size=8, sample_rate=1000, num_clips=2, clip_seconds=0.01)  # 10 samples a clip


def _save(model, path: Path) -> Path:
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def vision_graph(path: Path, size: int = 8, seed: float = 0.0) -> Path:
    w = numpy_helper.from_array(np.full((3, DV), 0.1 + seed, np.float32), "w")
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["y"])]
    g = helper.make_graph(nodes, "vision", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, size, size])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", DV])], [w])
    return _save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def audio_graph(path: Path, samples: int = 10) -> Path:
    w = numpy_helper.from_array(np.full((samples, DA), 0.1, np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "audio",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", samples])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", DA])], [w])
    return _save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def fusion_graph(path: Path, frames: int = 4, clips: int = 2) -> Path:
    w = numpy_helper.from_array(np.full((DV, H), 0.1, np.float32), "w")
    starts, ends, axes = (numpy_helper.from_array(np.array([v], np.int64), n) for v, n in ((0, "s"), (3, "e"), (1, "a")))
    nodes = [helper.make_node("MatMul", ["face", "w"], ["m"]), helper.make_node("Slice", ["m", "s", "e", "a"], ["y"])]
    g = helper.make_graph(nodes, "fusion", [helper.make_tensor_value_info("face", TensorProto.FLOAT, ["b", frames, DV]),
                                            helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["b", clips, DA])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 3, H])], [w, starts, ends, axes])
    return _save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def make_bundle(folder: Path, vision_size: int = 8, samples: int = 10, extra: dict | None = None, **prompt) -> Path:
    """A bundle that read_manifest accepts; `extra`: {role: file name} listed as well."""
    folder.mkdir(parents=True, exist_ok=True)
    vision_graph(folder / "vision.onnx", vision_size)
    audio_graph(folder / "audio.onnx", samples)
    fusion_graph(folder / "fusion.onnx")
    (folder / "llm.gguf").write_bytes(b"not reached by these tests")
    files = {role: file_entry(folder, f"{role}.onnx", "fp32") for role in ("vision", "audio", "fusion")}
    files["llm"] = file_entry(folder, "llm.gguf", "F16")
    for role, name in (extra or {}).items():
        files[role] = file_entry(folder, name)
    spec = dict(template="<MultiHere><AudioHere><FaceHere> {subtitle} {question}", question="q?", bos_token="<s>",
                eos_token="</s>", bos_id=1, eos_id=2)
    spec.update(prompt)
    write_manifest(folder, Manifest(name="tiny", dims=Dims(DV, DA, H, 100), preprocessing=Preprocessing(**PREP),
                                    prompt=PromptSpec(**spec), files=files))
    return folder


def relist(bundle: Path, **names) -> None:
    """Re-record the sha256 and size of files that a test changed (role=file name)."""
    raw = json.loads((bundle / MANIFEST_NAME).read_text())
    for role, name in names.items():
        entry = file_entry(bundle, name)
        raw["files"][role] = dict(path=entry.path, sha256=entry.sha256, bytes=entry.bytes, kind="")
    (bundle / MANIFEST_NAME).write_text(json.dumps(raw))


def point_at(graph: Path, location: str, tensor: str = "w") -> None:
    """Make `tensor` of the graph take its data from `location` (as a hostile exporter would write it)."""
    model = onnx.load(str(graph), load_external_data=False)
    for init in model.graph.initializer:
        if init.name == tensor:
            n = len(init.raw_data) or 4 * int(np.prod(init.dims))
            init.ClearField("raw_data")
            init.ClearField("float_data")
            init.data_location = TensorProto.EXTERNAL
            del init.external_data[:]
            for key, value in (("location", location), ("offset", "0"), ("length", str(n))):
                init.external_data.add(key=key, value=value)
    graph.write_bytes(model.SerializeToString())


# --- 1. ONNX external data -----------------------------------------------------------------------------------

def test_the_reader_finds_every_external_location_onnx_knows(tmp_path):
    """Initializers, sparse initializers, Constant attributes and subgraphs: the wire reader sees every location,
    at least those the onnx package's own walk finds (which skips sparse tensors)."""
    from runtime.onnx_external import external_refs

    def ext(name, location):
        t = numpy_helper.from_array(np.ones(4, np.float32), name)
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        t.external_data.add(key="location", value=location)
        return t

    sub = helper.make_graph([helper.make_node("Identity", ["k"], ["o"])], "then", [],
                            [helper.make_tensor_value_info("o", TensorProto.FLOAT, [4])], [ext("k", "sub.bin")])
    sparse = helper.make_sparse_tensor(ext("sv", "sparse.bin"), numpy_helper.from_array(np.array([0], np.int64), "si"), [4])
    nodes = [helper.make_node("Constant", [], ["c"], value=ext("cv", "const.bin")),
             helper.make_node("If", ["cond"], ["r"], then_branch=sub, else_branch=sub)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                          [helper.make_tensor_value_info("r", TensorProto.FLOAT, [4])], [ext("i", "init.bin")],
                          sparse_initializer=[sparse])
    path = _save(helper.make_model(g), tmp_path / "m.onnx")
    assert sorted({r.location for r in external_refs(path)}) == ["const.bin", "init.bin", "sparse.bin", "sub.bin"]
    onnx_says = sorted({e.value for t in onnx.external_data_helper._get_all_tensors(onnx.load(str(path), load_external_data=False))
                        for e in t.external_data if e.key == "location"})
    assert set(onnx_says) <= {r.location for r in external_refs(path)}


def test_a_graph_saved_with_listed_external_data_is_accepted(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    model = onnx.load(str(bundle / "vision.onnx"))
    onnx.save_model(model, str(bundle / "vision.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="vision.onnx.data", size_threshold=0)
    relist(bundle, vision="vision.onnx", **{"data:vision.onnx.data": "vision.onnx.data"})
    read_manifest(bundle)
    (bundle / "vision.onnx.data").unlink()
    relist(bundle, vision="vision.onnx")
    raw = json.loads((bundle / MANIFEST_NAME).read_text())
    del raw["files"]["data:vision.onnx.data"]
    (bundle / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="does not list with a sha256"):
        read_manifest(bundle)


@pytest.mark.parametrize("location", ["NOTICE.md", "README", "LICENSE.txt"])
def test_a_notes_file_cannot_be_a_graphs_weights(tmp_path, location):
    bundle = make_bundle(tmp_path / "b")
    (bundle / location).write_bytes(np.full((3, DV), 7.0, np.float32).tobytes())
    read_manifest(bundle)  # a notes file nothing reads is fine
    point_at(bundle / "vision.onnx", location)
    relist(bundle, vision="vision.onnx")
    with pytest.raises(BundleError, match=f"vision.onnx takes tensor 'w' from '{location}'.*does not list"):
        read_manifest(bundle)


def test_an_absolute_or_outside_location_is_refused(tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(np.full((3, DV), 7.0, np.float32).tobytes())
    for location in (str(outside), "../outside.bin", "sub/../../outside.bin", "C:\\weights.bin", ""):
        bundle = make_bundle(tmp_path / f"b{abs(hash(location))}")
        point_at(bundle / "vision.onnx", location)
        relist(bundle, vision="vision.onnx")
        with pytest.raises(BundleError, match="plain relative path inside the bundle"):
            read_manifest(bundle)


def test_external_data_through_a_link_is_refused_even_when_listed(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    (bundle / "real.bin").write_bytes(np.full((3, DV), 7.0, np.float32).tobytes())
    (bundle / "w.bin").symlink_to("real.bin")
    point_at(bundle / "vision.onnx", "w.bin")
    relist(bundle, vision="vision.onnx", **{"data:real": "real.bin", "data:w": "w.bin"})
    with pytest.raises(BundleError, match="a link"):
        read_manifest(bundle)


@pytest.mark.parametrize("name", [".w", "sub/.hidden.bin", "NOTICE.bin", "README.onnx", "LICENSE.gguf",
                                  "llm-00002-of-00002.gguf"])
def test_files_the_manifest_does_not_list_are_refused_hidden_ones_included(tmp_path, name):
    bundle = make_bundle(tmp_path / "b")
    (bundle / name).parent.mkdir(parents=True, exist_ok=True)
    (bundle / name).write_bytes(b"\0" * 48)
    with pytest.raises(BundleError, match="does not list"):
        read_manifest(bundle)


def test_a_link_among_the_notes_is_refused(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    (tmp_path / "secret").write_text("x")
    (bundle / "NOTICE.md").symlink_to(tmp_path / "secret")
    with pytest.raises(BundleError, match="NOTICE.md"):
        read_manifest(bundle)


def test_a_listed_graph_that_is_not_onnx_is_refused(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    (bundle / "audio.onnx").write_bytes(b"\xff\xff\xff\xff not a protobuf")
    relist(bundle, audio="audio.onnx")
    with pytest.raises(BundleError, match="audio.onnx .*not a readable ONNX model"):
        read_manifest(bundle)


# --- 2. numbers that multiply into tens of GB; shapes the preprocessing cannot feed --------------------------

@pytest.mark.parametrize("numbers, what", [(dict(num_frames=256, image_size=4096), "pixels per window"),
                                           (dict(num_frames=64, image_size=2048), "pixels per window"),
                                           (dict(num_clips=256, clip_seconds=60, sample_rate=192000), "audio per window")])
def test_products_of_preprocessing_numbers_are_bounded(numbers, what):
    with pytest.raises(BundleError, match=what):
        Preprocessing(**numbers)


def test_real_preprocessing_fits_the_bounds():
    Preprocessing(num_frames=16, image_size=448)
    Preprocessing(num_clips=16, clip_seconds=10, sample_rate=48000)


def _pipeline_error(bundle, **options):
    from runtime.pipeline import Pipeline, RuntimeOptions

    with pytest.raises(BundleError) as caught:
        Pipeline(bundle, RuntimeOptions(**options))
    return str(caught.value)


def test_encoder_inputs_must_match_the_preprocessing(tmp_path):
    message = _pipeline_error(make_bundle(tmp_path / "v", vision_size=16))
    assert "vision.onnx input" in message and "[frames, 3, 8, 8]" in message
    message = _pipeline_error(make_bundle(tmp_path / "a", samples=12))
    assert "audio.onnx input" in message and "[clips, 10]" in message
    bundle = make_bundle(tmp_path / "f")
    fusion_graph(bundle / "fusion.onnx", frames=7)
    relist(bundle, fusion="fusion.onnx")
    assert "fusion.onnx face input" in _pipeline_error(bundle)


def test_out_of_memory_at_load_or_warm_up_is_one_line(tmp_path, monkeypatch, capsys):
    import runtime.stream
    import runtime.stream.__main__ as cli

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(cli, "open_bundle", no_memory)
    assert cli.main(["--video", str(video), "--bundle", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "error: out of memory", err

    class FakePipeline:
        class manifest:
            weights = "trained"
            prompt = None

        llm = None

    class WarmUpFails:  # numpy's words when a window of 256 frames of 4096² does not fit
        def __init__(self, *args, **kwargs):
            raise MemoryError("Unable to allocate 12.0 GiB for an array with shape (256, 4096, 4096, 3)")

    monkeypatch.setattr(cli, "open_bundle", lambda *a, **k: FakePipeline())
    for name, stand_in in (("fit_subtitle", lambda llm, prompt, subtitle, task: (subtitle, False)),
                           ("input_specs", lambda args: []), ("Stream", WarmUpFails)):
        monkeypatch.setattr(cli, name, stand_in, raising=False)
    monkeypatch.setattr(runtime.stream, "Stream", WarmUpFails)
    assert cli.main(["--video", str(video), "--bundle", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: Unable to allocate 12.0 GiB"), err


# --- 3. TensorRT engines: built on the device, cached outside the bundle, keyed by the graphs' sha256 ------------

KEY = "NVIDIA-Jetson-Orin-sm87-trt10.3.0"


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("AFFECTGPT_ENGINE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    import runtime.backends

    monkeypatch.setattr(runtime.backends, "engine_key", lambda: KEY)  # no TensorRT here
    return tmp_path / "xdg" / "affectgpt-edge" / "engines"


def test_a_bundle_that_carries_engines_is_refused(tmp_path, cache_home):
    bundle = make_bundle(tmp_path / "b")
    folder = bundle / "engines" / KEY
    folder.mkdir(parents=True)
    (folder / "vision.fp16.engine").write_bytes(b"a plan from somewhere")
    from quant.tensorrt import record_engines

    record_engines(folder, [folder / "vision.fp16.engine"])
    with pytest.raises(BundleError, match="never taken from a bundle"):
        read_manifest(bundle)
    message = _pipeline_error(bundle, backend="tensorrt", engine_dir=str(folder))
    assert "never taken from a bundle" in message


def test_engines_are_looked_for_outside_the_bundle_keyed_by_its_graphs(tmp_path, cache_home):
    from quant.tensorrt import engines_folder
    from runtime.pipeline import engine_folder_for

    bundle = make_bundle(tmp_path / "b")
    manifest = read_manifest(bundle)
    folder = engine_folder_for(bundle, manifest, KEY)
    assert folder.is_relative_to(cache_home / KEY) and not folder.resolve().is_relative_to(bundle.resolve())
    assert engines_folder(bundle, manifest, KEY) == folder  # quant.tensorrt builds where the runtime looks
    message = _pipeline_error(bundle, backend="tensorrt")
    assert str(folder / "vision.fp16.engine") in message and "python -m quant.tensorrt" in message

    vision_graph(bundle / "vision.onnx", seed=0.5)  # same names, other weights: an updated bundle
    relist(bundle, vision="vision.onnx")
    assert engine_folder_for(bundle, read_manifest(bundle), KEY) != folder
    assert engine_folder_for(bundle, read_manifest(bundle), KEY.replace("sm87", "sm89")).parent.name != KEY


def test_ort_trt_gets_an_engine_cache_per_graph_content(tmp_path, cache_home, monkeypatch):
    import runtime.encoders
    from runtime.backends import BackendError

    seen = []

    def providers(backend, cache_dir=None, fp16=True):
        seen.append(cache_dir)
        raise BackendError("no TensorRT provider here")

    monkeypatch.setattr(runtime.encoders, "ort_providers", providers)
    one, two = make_bundle(tmp_path / "one"), make_bundle(tmp_path / "two")
    vision_graph(two / "vision.onnx", seed=0.5)
    relist(two, vision="vision.onnx")
    from runtime.encoders import EncoderError
    from runtime.pipeline import Pipeline, RuntimeOptions

    caches = []
    for bundle in (one, two):
        seen.clear()
        with pytest.raises(EncoderError):
            Pipeline(bundle, RuntimeOptions(backend="ort-trt"))
        caches.append(Path(seen[0]))
    assert all(c.is_relative_to(cache_home / "ort-trt") for c in caches)
    assert caches[0] != caches[1]  # same file names, other weights: never the other bundle's engine
    from runtime.manifest import sources_digest

    assert caches[0] == Path(runtime.backends.ort_trt_cache(sources_digest(one, read_manifest(one), ["vision"])))


def test_engine_key_is_made_of_gpu_compute_capability_and_tensorrt_version():
    from runtime.backends import engine_key_for

    assert engine_key_for("NVIDIA GeForce RTX 4090", 8, 9, "10.3.0") == "NVIDIA-GeForce-RTX-4090-sm89-trt10.3.0"
    assert "/" not in engine_key_for("../../x", 8, 7, "10/../..")


# --- 4. strings from a bundle; the stop text ---------------------------------------------------------------------

def test_bundle_strings_are_escaped_in_messages(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    (bundle / "evil\x1b[2J\nINFO all good.bin").write_bytes(b"x")
    with pytest.raises(BundleError) as caught:
        read_manifest(bundle)
    assert "\x1b" not in str(caught.value) and "\n" not in str(caught.value) and "\\x1b[2J\\nINFO" in str(caught.value)
    (bundle / "evil\x1b[2J\nINFO all good.bin").unlink()
    raw = json.loads((bundle / MANIFEST_NAME).read_text())
    raw["files"]["vision\u202e\x1b]0;title\x07"] = dict(raw["files"]["vision"], path="gone\r.onnx")
    (bundle / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(BundleError) as caught:
        read_manifest(bundle)
    assert str(caught.value).isprintable(), repr(str(caught.value))


@pytest.mark.parametrize("stop", ["", "  ", "\n"])
def test_an_empty_stop_text_is_refused(tmp_path, stop):
    bundle = make_bundle(tmp_path / "b")
    raw = json.loads((bundle / MANIFEST_NAME).read_text())
    raw["prompt"]["stop_text"] = stop
    (bundle / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="prompt.stop_text"):
        read_manifest(bundle)


@pytest.mark.parametrize("field, value", [("prompt", {"template": 3}), ("files", []),
                                          ("prompt", {"placeholders": [3, "<AudioHere>", "<FaceHere>"]})])
def test_malformed_fields_are_one_line_bundle_errors(tmp_path, field, value):
    bundle = make_bundle(tmp_path / "b")
    raw = json.loads((bundle / MANIFEST_NAME).read_text())
    raw[field] = dict(raw[field], **value) if isinstance(value, dict) and field == "prompt" else value
    (bundle / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(BundleError) as caught:
        read_manifest(bundle)
    assert str(caught.value).isprintable()
