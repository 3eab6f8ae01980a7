"""TensorRT engines for a bundle's encoders and fusion, built with TensorRT's Python API (a post-processing
step of a bundle, as the other quantized variants are).

    python -m quant.tensorrt --bundle B --precision fp16
    python -m quant.tensorrt --bundle B --precision int8 --clips CLIPS_DIR

Engines run only on the GPU model, compute capability and TensorRT version they were built with, and a plan
is code for the GPU: they are built on the device and kept outside the bundle, in the engine cache
($AFFECTGPT_ENGINE_CACHE, else $XDG_CACHE_HOME or ~/.cache, then affectgpt-edge/engines; see
runtime.backends.engine_cache_root) under <gpu>-sm<cc>-trt<version>/<sha256 of the bundle's graphs>/, beside
the timing cache that makes rebuilds fast. A bundle that carries engines is refused. INT8 is calibrated
(entropy calibrator) on real clips fed through the runtime's preprocessing.
Runtime: `python -m runtime.stream --backend tensorrt ...`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from quant.errors import QuantError
from runtime.atomic import atomic_file, write_text
from runtime.errors import run_cli
from runtime.manifest import (
    AUDIO,
    ENCODER_ROLES,
    ENGINES_LIST,
    FUSION,
    VISION,
    read_manifest,
    sha256_file,
)

# Optimisation profiles: (min, opt, max) of the leading axis of each graph's inputs.
PROFILES = {VISION: (1, 8, 32), AUDIO: (1, 8, 16), FUSION: (1, 1, 4)}


def _trt():
    try:
        import tensorrt as trt
    except ImportError:
        raise QuantError("TensorRT is not installed: it comes with JetPack on Jetson; on x86_64 install "
                            "the tensorrt extra from NVIDIA's index") from None
    return trt


def _calibrator(trt, feeds: list[dict], cache_path: Path):
    import numpy as np
    from cuda.bindings import runtime as cudart

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self.feeds = iter(feeds)
            self.buffers: dict[str, int] = {}

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            feed = next(self.feeds, None)
            if feed is None:
                return None
            pointers = []
            for name in names:
                array = np.ascontiguousarray(feed[name], dtype=np.float32)
                if name not in self.buffers:
                    _, self.buffers[name] = cudart.cudaMalloc(array.nbytes * 4)
                cudart.cudaMemcpy(self.buffers[name], array.ctypes.data, array.nbytes,
                                  cudart.cudaMemcpyKind.cudaMemcpyHostToDevice)
                pointers.append(int(self.buffers[name]))
            return pointers

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache):
            cache_path.write_bytes(bytes(cache))

    return Calibrator()


def build_engine(onnx_path: Path, engine_path: Path, role: str, precision: str, timing_cache: Path,
                 feeds: list[dict] | None = None, workspace_gb: float = 2.0) -> None:
    trt = _trt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise QuantError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    profile = builder.create_optimization_profile()
    lo, opt, hi = PROFILES[role]
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        rest = tuple(tensor.shape)[1:]
        profile.set_shape(tensor.name, (lo, *rest), (opt, *rest), (hi, *rest))
    config.add_optimization_profile(profile)
    config.set_flag(trt.BuilderFlag.FP16)  # int8 engines keep fp16 for the layers INT8 does not cover
    if precision == "int8":
        if not feeds:
            raise QuantError("int8 engines need calibration clips: --clips DIR")
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_calibration_profile(profile)
        config.int8_calibrator = _calibrator(trt, feeds, engine_path.with_suffix(".calib"))
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise QuantError(f"TensorRT could not build an engine for {onnx_path.name}")
    with atomic_file(engine_path) as tmp:
        tmp.write_bytes(bytes(serialized))
    with atomic_file(timing_cache) as tmp:
        tmp.write_bytes(bytes(config.get_timing_cache().serialize()))


def engines_folder(bundle: Path, manifest, key: str) -> Path:
    """The cache folder the runtime's --backend tensorrt looks in for this bundle on a device with `key`."""
    from runtime.pipeline import engine_folder_for

    return engine_folder_for(bundle, manifest, key)


def build_bundle_engines(bundle: str | os.PathLike, precision: str, clips_dir: str | None = None,
                         workspace_gb: float = 2.0) -> list[Path]:
    from runtime.backends import engine_key

    _trt()
    bundle = Path(bundle)
    manifest = read_manifest(bundle)  # hashes every graph: the cache key below is the manifest's sha256
    folder = engines_folder(bundle, manifest, engine_key())
    folder.mkdir(parents=True, exist_ok=True)
    feeds = None
    if precision == "int8":
        from quant.onnx import calibration_inputs, media_files

        if not clips_dir:
            raise QuantError("int8 engines need calibration clips: --clips DIR")
        feeds = calibration_inputs(bundle, media_files(clips_dir))
    out = []
    for role in ENCODER_ROLES:
        engine = folder / f"{role}.{precision}.engine"
        build_engine(bundle / manifest.files[role].path, engine, role, precision, folder.parent / "timing.cache",
                     feeds[role] if feeds else None, workspace_gb)
        out.append(engine)
    record_engines(folder, out)
    return out


def record_engines(folder: Path, engines: list[Path]) -> None:
    """Add the engines' sha256 and size to the folder's engines.json, which the runtime checks them against."""
    listing = folder / ENGINES_LIST
    listed = json.loads(listing.read_text()) if listing.is_file() else {}
    for engine in engines:
        listed[engine.name] = {"sha256": sha256_file(engine), "bytes": engine.stat().st_size}
    write_text(listing, json.dumps(listed, indent=2, sort_keys=True))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m quant.tensorrt", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--precision", choices=("fp16", "int8"), default="fp16")
    ap.add_argument("--clips", help="calibration clips for int8")
    ap.add_argument("--workspace-gb", type=float, default=2.0)
    args = ap.parse_args(argv)
    from runtime.manifest import BundleError

    try:
        for engine in build_bundle_engines(args.bundle, args.precision, args.clips, args.workspace_gb):
            print(f"{engine} {engine.stat().st_size / 1e6:.1f} MB")
    except (QuantError, BundleError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
