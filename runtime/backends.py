"""Where the encoders run: ONNX Runtime on the CPU, with CUDA, with its TensorRT provider, or TensorRT
engines directly. A requested backend that is not there is an error that says why — ONNX Runtime would
otherwise fall back to the CPU without a word.
"""

from __future__ import annotations

import os
from pathlib import Path

from runtime.errors import EdgeError

BACKENDS = ("ort-cpu", "ort-cuda", "ort-trt", "tensorrt")
_PROVIDER = {"ort-cpu": "CPUExecutionProvider", "ort-cuda": "CUDAExecutionProvider",
             "ort-trt": "TensorrtExecutionProvider"}


class BackendError(EdgeError):
    pass


def engine_cache_root() -> Path:
    """Where engines built on this device are kept: $AFFECTGPT_ENGINE_CACHE, else $XDG_CACHE_HOME/affectgpt-edge/
    engines, else ~/.cache/affectgpt-edge/engines. Never inside a bundle: a plan is code for the GPU, built
    here from graphs whose sha256 the bundle's manifest vouches for, and a bundle cannot ship one."""
    if os.environ.get("AFFECTGPT_ENGINE_CACHE"):
        return Path(os.environ["AFFECTGPT_ENGINE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "affectgpt-edge" / "engines"


def engine_folder(sources: str, key: str, root: str | os.PathLike | None = None) -> Path:
    """The cache folder of TensorRT engines built from graphs with digest `sources` (runtime.manifest.
    sources_digest) on a device with `key` (engine_key): another bundle's weights or another GPU / TensorRT
    version never finds them."""
    return Path(root or engine_cache_root()) / _safe(key) / sources[:32]


def ort_trt_cache(sources: str, root: str | os.PathLike | None = None) -> Path:
    """ONNX Runtime's TensorRT engine cache for one graph (digest `sources`): ONNX Runtime names its cached
    engines by the graph's node and tensor names, not its weights, so each graph's content gets its own folder;
    ONNX Runtime's and TensorRT's versions and the GPU are part of the key as its documentation asks."""
    import onnxruntime as ort

    try:
        device = engine_key()
    except BackendError:  # no TensorRT / cuda-python Python packages: ONNX Runtime's own file names carry sm<cc>
        device = "gpu"
    return Path(root or engine_cache_root()) / "ort-trt" / _safe(f"{device}-ort{ort.__version__}") / sources[:32]


def graph_digest(path: str | os.PathLike) -> str:
    """sha256 over an ONNX file and the external data files it names: the key of a graph that comes without a
    manifest (a bundle's graphs are keyed by their manifest sha256, runtime.manifest.sources_digest)."""
    import hashlib

    from runtime.manifest import sha256_file
    from runtime.onnx_external import OnnxFormatError, external_refs

    path = Path(path)
    digest = hashlib.sha256(sha256_file(path).encode())
    try:
        refs = external_refs(path)
    except (OnnxFormatError, OSError):
        refs = []  # ONNX Runtime refuses the file itself
    for location in sorted({r.location for r in refs if r.location}):
        data = path.parent / location
        digest.update(f"\0{location}\0{sha256_file(data) if data.is_file() else ''}".encode())
    return digest.hexdigest()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "-" for c in name).strip("-.") or "unnamed"


def ort_providers(backend: str, cache_dir: str | os.PathLike | None = None, fp16: bool = True) -> list:
    """The provider list for an ONNX Runtime backend, checked against what this onnxruntime build has.
    `cache_dir`: ort-trt's engine cache for this graph (ort_trt_cache); required for ort-trt."""
    import onnxruntime as ort

    if backend not in _PROVIDER:
        raise BackendError(f"unknown ONNX Runtime backend {backend!r}; choose from {', '.join(_PROVIDER)}")
    wanted = _PROVIDER[backend]
    available = ort.get_available_providers()
    if wanted not in available:
        hint = "install onnxruntime-gpu instead of onnxruntime (extra gpu)" if backend != "ort-cpu" else ""
        raise BackendError(f"backend {backend} needs {wanted}, which this onnxruntime does not have "
                           f"(it has {', '.join(available)}); {hint}".rstrip("; "))
    if backend == "ort-cpu":
        return ["CPUExecutionProvider"]
    if backend == "ort-cuda":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if cache_dir is None:  # a cache shared by every graph would hand one graph another's engine
        raise BackendError("backend ort-trt needs an engine cache folder per graph (runtime.backends.ort_trt_cache)")
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    trt_options = {"trt_fp16_enable": fp16, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                   "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache)}
    return [("TensorrtExecutionProvider", trt_options), "CUDAExecutionProvider", "CPUExecutionProvider"]


def check_provider(backend: str, used: str, path) -> None:
    """ONNX Runtime picks the first provider that loads; refuse a silent fall-back."""
    wanted = _PROVIDER.get(backend)
    if wanted and used != wanted:
        raise BackendError(f"{Path(path).name}: backend {backend} asked for {wanted}, but ONNX Runtime runs "
                           f"{used} (are the CUDA / TensorRT libraries on the library path?)")


def engine_key() -> str:
    """GPU name, compute capability and TensorRT version: a TensorRT engine runs only where it was built."""
    try:
        import tensorrt as trt
        from cuda.bindings import runtime as cudart
    except ImportError as err:
        raise BackendError(f"backend tensorrt needs TensorRT and cuda-python (JetPack, or the tensorrt extra): {err}") from None
    err, props = cudart.cudaGetDeviceProperties(0)
    if err != cudart.cudaError_t.cudaSuccess:
        raise BackendError(f"no CUDA device: {err}")
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return engine_key_for(name, props.major, props.minor, trt.__version__)


def engine_key_for(gpu: str, major: int, minor: int, tensorrt_version: str) -> str:
    """The engine key, e.g. NVIDIA-GeForce-RTX-4090-sm89-trt10.3.0: a TensorRT engine runs only on the GPU model,
    compute capability and TensorRT version it was built with."""
    gpu = "".join(c if c.isalnum() else "-" for c in gpu).strip("-")
    return _safe(f"{gpu}-sm{major}{minor}-trt{tensorrt_version}")


class TensorRTModel:
    """A serialized TensorRT engine with the OnnxModel call interface: numpy in, numpy out (first output).

    Device memory is held per input shape and reused; host ↔ device copies go through cuda-python.
    """

    def __init__(self, engine_path: str | os.PathLike):
        try:
            import tensorrt as trt
            from cuda.bindings import runtime as cudart
        except ImportError as err:
            raise BackendError(f"backend tensorrt needs TensorRT and cuda-python: {err}") from None
        self.trt, self.cudart = trt, cudart
        logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise BackendError(f"TensorRT cannot load {engine_path} (built for another GPU or TensorRT version?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.input_shapes = [list(self.engine.get_tensor_shape(n)) for n in self.inputs]
        self.output_shape = list(self.engine.get_tensor_shape(self.outputs[0]))
        self.provider = "TensorRT"
        self.path = str(engine_path)
        _, self.stream = cudart.cudaStreamCreate()
        self._buffers: dict[str, tuple[int, int]] = {}

    def _device(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                self.cudart.cudaFree(ptr)
            _, ptr = self.cudart.cudaMalloc(nbytes)
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def __call__(self, *arrays):
        import numpy as np

        cudart = self.cudart
        kind = cudart.cudaMemcpyKind
        for name, array in zip(self.inputs, arrays):
            array = np.ascontiguousarray(array, dtype=np.float32)
            self.context.set_input_shape(name, array.shape)
            ptr = self._device(name, array.nbytes)
            cudart.cudaMemcpyAsync(ptr, array.ctypes.data, array.nbytes, kind.cudaMemcpyHostToDevice, self.stream)
            self.context.set_tensor_address(name, ptr)
        results = []
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            out = np.empty(shape, np.float32)
            ptr = self._device(name, out.nbytes)
            self.context.set_tensor_address(name, ptr)
            results.append((ptr, out))
        if not self.context.execute_async_v3(self.stream):
            raise BackendError(f"TensorRT failed to run {self.path}")
        for ptr, out in results:
            cudart.cudaMemcpyAsync(out.ctypes.data, ptr, out.nbytes, kind.cudaMemcpyDeviceToHost, self.stream)
        cudart.cudaStreamSynchronize(self.stream)
        return results[0][1]
