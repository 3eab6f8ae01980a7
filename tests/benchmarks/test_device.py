"""The device check: CPU alone here, every missing library a row with its reason, wheels carried in parts."""

import hashlib
import json
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from benchmarks import device
from benchmarks.errors import BenchmarkError
from runtime.errors import run_cli

BUNDLE = Path(device.DEMO) / "bundle"


def _base_model_installed() -> bool:
    return device._probe("base", lambda: device.probe_base_model(BUNDLE)).ok


def test_cpu_only_table(tmp_path, capsys):
    assert run_cli(device.main, ["--bundle", str(BUNDLE), "--out", str(tmp_path), "--windows", "1", "--clips", "1",
                                 "--threads", "1"]) == 0
    text = capsys.readouterr().out
    data = json.loads((tmp_path / "device.json").read_text())
    assert (tmp_path / "device.md").read_text().strip() == text.strip()
    paths, probes = data["paths"], data["probes"]
    assert data["meta"]["cpu"] and data["meta"]["reference"] == "ort-cpu"
    assert paths["ort-cpu"]["status"] == "ran" and paths["ort-cpu"]["stages_ms"]["audio"] > 0
    for name, row in paths.items():  # each row ran or says why not
        assert row["status"] == "ran" or row["detail"], name
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert "ort-cuda | **not available**" in text and "has no CUDAExecutionProvider" in paths["ort-cuda"]["detail"]
    if not probes["tensorrt"]["ok"]:
        assert paths["tensorrt"]["status"] == "not available" and "tensorrt: not available — no tensorrt module" in text
    if not probes["torch-cuda"]["ok"]:
        assert paths["torch-cuda"]["status"] == "not available"
    if paths["torch-cpu"]["status"] == "ran":  # the PyTorch reference runs the same graphs
        assert paths["torch-cpu"]["cosine_min"] > 0.9999
    if _base_model_installed():
        assert paths["llama-cpu"]["status"] == "ran" and paths["llama-cpu"]["answers"][0]
        if paths["torch-cpu"]["status"] == "ran":
            assert paths["torch-cpu"]["answers_equal"] == "1/1"


def test_inputs_saved_and_reused(tmp_path):
    saved = tmp_path / "inputs.npz"
    samples = device.sample_list(None, 2)
    first = device.load_inputs(BUNDLE, samples, None)
    device.save_inputs(saved, first)
    again = device.load_inputs(BUNDLE, [], saved)
    assert [x["name"] for x in again] == [p.name for p, _ in samples]
    assert all(np.array_equal(a["pixels"], b["pixels"]) and np.array_equal(a["clips"], b["clips"])
               for a, b in zip(first, again))


def test_bad_input_is_one_line(tmp_path, capsys):
    assert run_cli(device.main, ["--bundle", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no bundle at") and err.count("\n") == 1
    assert run_cli(device.main, ["--out", str(tmp_path), "--skip", "warp-drive"]) == 2
    assert run_cli(device.main, ["pack-wheel", str(tmp_path / "x.whl"), "--parts-dir", str(tmp_path)]) == 1
    assert "no wheel at" in capsys.readouterr().err


# --- wheels in parts -------------------------------------------------------------------------------------------

def _wheel(path: Path, value: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("carried_pkg_for_test/__init__.py", f"VALUE = {value}\n")
        z.writestr("carried_pkg_for_test/blob.bin", np.random.default_rng(0).bytes(5000))
    return path


def test_wheel_split_and_joined(tmp_path, monkeypatch):
    wheel = _wheel(tmp_path / "carried_pkg_for_test-1.0-py3-none-any.whl", 42)
    parts = tmp_path / "parts"
    written = device.pack_wheel(wheel, parts, max_mib=2000 / (1 << 20))
    listing = json.loads(written[-1].read_text())
    assert len(listing["parts"]) == len(written) - 1 >= 3
    assert all(p.stat().st_size <= 2000 for p in written[:-1])
    assert listing["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    joined = device.reassemble_wheels(parts, tmp_path / "joined")
    assert [w.read_bytes() for w in joined] == [wheel.read_bytes()]

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "carried_pkg_for_test", raising=False)
    assert device.use_wheels(parts) == [wheel.name]
    import carried_pkg_for_test

    assert carried_pkg_for_test.VALUE == 42
    monkeypatch.delitem(sys.modules, "carried_pkg_for_test")


def test_damaged_or_missing_part_refused(tmp_path):
    wheel = _wheel(tmp_path / "carried_pkg_for_test-1.0-py3-none-any.whl", 1)
    parts = tmp_path / "parts"
    written = device.pack_wheel(wheel, parts, max_mib=2000 / (1 << 20))
    damaged = bytearray(written[1].read_bytes())
    damaged[10] ^= 0xFF
    written[1].write_bytes(bytes(damaged))
    with pytest.raises(BenchmarkError, match="part 2 of .* damaged"):
        device.reassemble_wheels(parts, tmp_path / "j1")
    written[1].unlink()
    with pytest.raises(BenchmarkError, match="part 2 of .* missing"):
        device.reassemble_wheels(parts, tmp_path / "j2")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BenchmarkError, match="no wheels"):
        device.reassemble_wheels(empty, tmp_path / "j3")


# --- each probe, its library missing -----------------------------------------------------------------------------

@pytest.mark.parametrize("module, probe", [
    ("onnxruntime", device.probe_onnxruntime), ("tensorrt", device.probe_tensorrt), ("llama_cpp", device.probe_llama),
    ("llama_cpp", device.probe_llama_cuda), ("torch", device.probe_torch_cuda), ("onnx", device.probe_torch),
    ("av", device.probe_media), ("onnxruntime", lambda: device.probe_ort_provider("CUDAExecutionProvider")),
])
def test_probe_says_module_missing(monkeypatch, module, probe):
    monkeypatch.setitem(sys.modules, module, None)  # import then raises ImportError naming it
    got = device._probe("x", probe)
    assert not got.ok and got.detail == f"no {module} module"


def test_probes_say_why_when_the_library_lacks_the_device(monkeypatch):
    fake_ort = types.SimpleNamespace(__version__="9.9", get_available_providers=lambda: ["CPUExecutionProvider"])
    monkeypatch.setitem(sys.modules, "onnxruntime", fake_ort)
    got = device._probe("ort-trt", lambda: device.probe_ort_provider("TensorrtExecutionProvider"))
    assert not got.ok and got.detail == "onnxruntime 9.9 has no TensorrtExecutionProvider (it has CPUExecutionProvider)"
    listed = types.SimpleNamespace(__version__="9.9", get_available_providers=lambda: ["TensorrtExecutionProvider"])
    monkeypatch.setitem(sys.modules, "onnxruntime", listed)
    monkeypatch.setattr(device, "_nvinfer_loads", lambda: False)  # onnxruntime-gpu without TensorRT installed
    got = device._probe("ort-trt", lambda: device.probe_ort_provider("TensorrtExecutionProvider"))
    assert not got.ok and "libnvinfer" in got.detail
    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(llama_supports_gpu_offload=lambda: False))
    assert "without GPU offload" in device._probe("llama-cuda", device.probe_llama_cuda).detail
    fake_torch = types.SimpleNamespace(__version__="2.x+cpu", cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    assert device._probe("torch-cuda", device.probe_torch_cuda).detail == "torch 2.x+cpu sees no CUDA device"
    monkeypatch.setitem(sys.modules, "onnxruntime", types.SimpleNamespace())  # a broken install: still a row
    assert not device._probe("onnxruntime", device.probe_onnxruntime).ok


def test_missing_paths_are_rows_not_tracebacks():
    probes = {name: device.Probe(name, False, f"{name} missing") for name in
              ("onnxruntime", "ort-cuda", "ort-trt", "tensorrt", "llama.cpp", "llama-cuda", "torch", "torch-cuda",
               "media", "base model")}
    results = device.check(BUNDLE, [], 1, 1, probes)
    assert {r.status for r in results.values()} == {"not available"}
    assert results["torch-cuda"].detail == "torch missing" and results["llama-cuda"].detail == "llama.cpp missing"


# --- the PyTorch reference ---------------------------------------------------------------------------------------

def _graph_inputs(rng):
    from runtime.manifest import read_manifest

    dims = read_manifest(BUNDLE).dims  # the shipped default's widths
    return {"vision": [rng.uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)],
            "audio": [rng.standard_normal((2, 32000)).astype(np.float32)],
            "fusion": [rng.standard_normal((1, 8, dims.vision_dim)).astype(np.float32),
                       rng.standard_normal((1, 8, dims.audio_dim)).astype(np.float32)]}


def _cos(a, b):
    a, b = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_torch_reference_matches_onnxruntime():
    pytest.importorskip("onnx")
    from benchmarks.torch_graph import TorchGraph
    from runtime.encoders import OnnxModel

    for role, arrays in _graph_inputs(np.random.default_rng(0)).items():
        path = BUNDLE / f"{role}.onnx"
        want, got = OnnxModel(path, 1)(*arrays), TorchGraph(path)(*arrays)
        assert got.shape == want.shape and np.abs(got - want).max() < 1e-3 and _cos(got, want) > 0.99999, role


@pytest.mark.gpu
def test_gpu_paths_match_the_cpu(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip(f"no CUDA device (torch {torch.__version__})")
    pytest.importorskip("onnx")
    from benchmarks.torch_graph import TorchGraph

    for role, arrays in _graph_inputs(np.random.default_rng(1)).items():
        path = BUNDLE / f"{role}.onnx"
        cpu, gpu = TorchGraph(path)(*arrays), TorchGraph(path, "cuda")(*arrays)
        assert _cos(gpu, cpu) > 0.9999, role
    probes = device.probe_all(BUNDLE)
    if probes["ort-cuda"].ok:
        from runtime.encoders import OnnxModel

        for role, arrays in _graph_inputs(np.random.default_rng(2)).items():
            path = BUNDLE / f"{role}.onnx"
            cuda = OnnxModel(path, backend="ort-cuda")
            assert cuda.provider == "CUDAExecutionProvider"
            assert _cos(cuda(*arrays), OnnxModel(path)(*arrays)) > 0.9999, role
