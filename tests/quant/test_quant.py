"""Quantization ladder, accuracy gate and accelerated backends, on the tiny bundle."""

import json
import shutil

import numpy as np
import pytest

from runtime.manifest import read_manifest
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def calib_dir(media_dir):
    from train.synth import write_clip

    folder = media_dir / "calib"
    folder.mkdir(exist_ok=True)
    for i in range(3):
        write_clip(folder / f"c{i}.mp4", seconds=3.0, seed=30 + i)
    return folder


@pytest.fixture(scope="module")
def ladder(bundle_f16, calib_dir, tmp_path_factory):
    bundle = tmp_path_factory.mktemp("quant") / "bundle"
    shutil.copytree(bundle_f16, bundle)
    gguf = run_cli("quant", "gguf", "--bundle", str(bundle), "--types", "Q8_0,Q4_K_M")
    assert gguf.returncode == 0, gguf.stderr
    onnx = run_cli("quant", "onnx", "--bundle", str(bundle), "--variants", "fp16,int8-dynamic,int8-static",
                   "--clips", str(calib_dir))
    assert onnx.returncode == 0, onnx.stderr
    return bundle


def test_ladder_files_are_in_the_manifest_with_their_hashes(ladder):
    manifest = read_manifest(ladder)  # verifies every sha256
    for role in ("llm@q8_0", "llm@q4_k_m", "vision@fp16", "audio@int8-dynamic", "fusion@int8-static"):
        assert role in manifest.files
    assert manifest.files["llm@q4_k_m"].bytes < manifest.files["llm@q8_0"].bytes < manifest.files["llm"].bytes
    assert manifest.files["vision@int8-dynamic"].bytes < manifest.files["vision"].bytes


def test_encoder_variants_stay_close_to_fp32(ladder, clip_path):
    from runtime.media import read_clip
    from runtime.pipeline import Pipeline, RuntimeOptions

    clip = read_clip(clip_path)
    fused = {}
    for variant in ("fp32", "fp16", "int8-dynamic", "int8-static"):
        pipeline = Pipeline(ladder, RuntimeOptions(encoder_variant=variant, llm_variant=""))
        fused[variant] = pipeline.features(clip).fused
        pipeline.close()
    for variant in ("fp16", "int8-dynamic", "int8-static"):
        a, b = fused[variant].ravel(), fused["fp32"].ravel()
        assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.98, variant
    assert np.abs(fused["fp16"] - fused["fp32"]).max() < 1e-2


def test_gate_marks_variants_and_never_defaults_to_a_failed_one(ladder, calib_dir, tmp_path):
    result = run_cli("benchmarks.gate", "--bundle", str(ladder), "--clips", str(calib_dir), "--out", str(tmp_path / "g"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "g" / "gate.json").read_text())
    rows = {r["variant"]: r for r in report["rows"]}
    assert rows["reference"]["score"] == 100.0
    assert set(rows) == {"reference", "encoders@fp16", "encoders@int8-dynamic", "encoders@int8-static",
                         "llm@q8_0", "llm@q4_k_m"}
    assert rows["encoders@fp16"]["cosine_fused"] > 0.999
    manifest = read_manifest(ladder)
    for kind, variant in manifest.defaults.items():
        assert manifest.variants[f"{kind}@{variant}"]["status"] == "passed"
    # the runtime runs the defaults
    from runtime.pipeline import Pipeline

    pipeline = Pipeline(ladder)
    assert pipeline.encoder_variant == manifest.defaults.get("encoders", "fp32")
    pipeline.close()

    strict = run_cli("benchmarks.gate", "--bundle", str(ladder), "--clips", str(calib_dir), "--out", str(tmp_path / "s"),
                     *[f"--tolerance={v}=-1" for v in ("fp16", "int8-dynamic", "int8-static", "Q8_0", "Q4_K_M")])
    assert strict.returncode == 0, strict.stderr
    manifest = read_manifest(ladder)
    assert manifest.defaults == {} and all(v["status"] == "failed" for v in manifest.variants.values())


def test_k_quant_fallback_is_detected(tmp_path):
    import gguf

    from quant.gguf import fallback_tensors

    path = tmp_path / "odd.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("blk.0.ffn_up.weight", np.zeros((4, 100), np.float32))
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((4, 256), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert fallback_tensors(path, "Q4_K_M") == ["blk.0.ffn_up.weight"]
    assert fallback_tensors(path, "Q8_0") == []


def test_missing_variant_is_refused(bundle_copy):
    from runtime.manifest import BundleError
    from runtime.pipeline import Pipeline, RuntimeOptions

    with pytest.raises(BundleError, match="no llm file for variant 'q4_k_m'"):
        Pipeline(bundle_copy, RuntimeOptions(llm_variant="q4_k_m"))


def test_unavailable_backends_say_why(bundle_f16, clip_path):
    cuda = run_cli("runtime.stream", "--clip", str(clip_path), "--bundle", str(bundle_f16), "--backend", "ort-cuda")
    assert cuda.returncode == 1 and "Traceback" not in cuda.stderr
    assert "CUDAExecutionProvider" in cuda.stderr
    trt = run_cli("runtime.stream", "--clip", str(clip_path), "--bundle", str(bundle_f16), "--backend", "tensorrt")
    assert trt.returncode == 1 and "Traceback" not in trt.stderr and trt.stderr.startswith("error: ")


def test_tensorrt_builder_without_tensorrt_is_one_line(bundle_f16):
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed: the GPU test covers the builder")
    except ImportError:
        pass
    result = run_cli("quant.tensorrt", "--bundle", str(bundle_f16))
    assert result.returncode == 1 and "TensorRT is not installed" in result.stderr


@pytest.mark.gpu
def test_tensorrt_engines_match_onnx(bundle_copy, clip_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (needs an NVIDIA GPU: JetPack or the tensorrt extra)")
    from quant.tensorrt import build_bundle_engines
    from runtime.media import read_clip
    from runtime.pipeline import Pipeline, RuntimeOptions

    build_bundle_engines(bundle_copy, "fp16")
    clip = read_clip(clip_path)
    onnx = Pipeline(bundle_copy, RuntimeOptions(backend="ort-cpu")).features(clip).fused
    engine = Pipeline(bundle_copy, RuntimeOptions(backend="tensorrt")).features(clip).fused
    a, b = onnx.ravel(), engine.ravel()
    assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.999


def test_bitsandbytes_loading_is_refused_on_cpu():
    import torch

    from train.config import ModelConfig
    from train.model import llm_load_options

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the refusal applies to CPU-only machines")
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        llm_load_options(ModelConfig(preset="x", llm_path="/nowhere", llm_quant="4bit"))


@pytest.mark.gpu
def test_qlora_trains_a_4bit_llm_on_cuda(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("QLoRA needs a CUDA GPU (bitsandbytes 4-bit); this machine has none")
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed")
    from tests.conftest import save_tiny_parts
    from train.config import affectgpt_7b
    from train.model import AffectGPT

    _, *folders = save_tiny_parts(tmp_path, seed=6)
    cfg = affectgpt_7b(*folders)
    cfg.llm_quant = "4bit"
    model = AffectGPT.build(cfg)
    model.vision.cuda()
    model.audio.cuda()
    model.fusion.cuda()
    prep = model.cfg.preprocessing
    pixels = torch.randn(1, 8, 3, prep.image_size, prep.image_size, device="cuda")
    clips = torch.randn(1, 8, prep.clip_samples, device="cuda")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(5):
        loss = model(pixels, clips, ["Fine."], ["The character's emotional state is happy."])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    # greedy decoding on the GPU too (the reference path the runtime is checked against)
    new_ids = model.generate(pixels[0], clips[0], "Fine.", max_new_tokens=4)
    assert len(new_ids) <= 4 and all(isinstance(i, int) for i in new_ids)
