"""The encoder stage: vision, audio and fusion graphs, in ONNX Runtime (CPU, CUDA, TensorRT provider) or as
TensorRT engines.

fusion ends exactly at the embedding boundary: three rows (multi, audio, face) of the LLM's width.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort

from runtime.backends import BackendError, TensorRTModel, check_provider, graph_digest, ort_providers, ort_trt_cache
from runtime.errors import EdgeError, printable


class EncoderError(EdgeError):
    pass


class OnnxModel:
    """One ONNX file in one ONNX Runtime session; refuses a silent fall-back to another provider."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, backend: str = "ort-cpu",
                 engine_cache: str | os.PathLike | None = None):
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if backend == "ort-trt" and engine_cache is None:  # a graph outside a bundle: keyed by its own bytes
            engine_cache = ort_trt_cache(graph_digest(path))
        providers = ort_providers(backend, engine_cache)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as err:  # ORT raises its own Fail / InvalidProtobuf types
            raise EncoderError(printable(f"ONNX Runtime cannot load {path}: {err}")) from None
        self.path = str(path)
        self.provider = self.session.get_providers()[0]
        check_provider(backend, self.provider, path)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.input_shapes = [i.shape for i in self.session.get_inputs()]
        self.output_shape = self.session.get_outputs()[0].shape

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        return self.session.run(None, dict(zip(self.inputs, arrays)))[0]


def load_model(path, threads: int | None = None, backend: str = "ort-cpu", engine_cache=None):
    if backend == "tensorrt":
        return TensorRTModel(path)
    return OnnxModel(path, threads, backend, engine_cache)


class Encoders:
    """frames → [T, Dv], clips → [K, Da], both → [3, H].

    Frames and clips go through their encoder `batch` at a time: the activations of eight CLIP-L frames or eight
    HuBERT-large clips at once take hundreds of MB that two at a time do not (measured at full size: −480 MB peak
    for the audio encoder and no slower, −110 MB for vision at +3 % time)."""

    def __init__(self, vision_path, audio_path, fusion_path, threads: int | None = None, backend: str = "ort-cpu",
                 batch: int = 2, engine_caches: tuple | None = None):
        """`engine_caches`: ort-trt's engine cache folder of each graph (runtime.backends.ort_trt_cache)."""
        self.backend = backend
        self.batch = max(1, batch)
        caches = engine_caches or (None, None, None)
        try:
            self.vision = load_model(vision_path, threads, backend, caches[0])
            self.audio = load_model(audio_path, threads, backend, caches[1])
            self.fusion = load_model(fusion_path, threads, backend, caches[2])
        except BackendError as err:
            raise EncoderError(str(err)) from None

    @property
    def providers(self) -> dict[str, str]:
        """The provider each graph really runs on."""
        return {"vision": self.vision.provider, "audio": self.audio.provider, "fusion": self.fusion.provider}

    def _batched(self, model, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32, copy=False)
        return np.concatenate([np.asarray(model(x[i:i + self.batch]), np.float32) for i in range(0, len(x), self.batch)])

    def encode_frames(self, pixel_values: np.ndarray) -> np.ndarray:
        """[T, 3, S, S] float32 → [T, Dv] float32."""
        return self._batched(self.vision, pixel_values)

    def encode_clips(self, clips: np.ndarray) -> np.ndarray:
        """[K, samples] float32 → [K, Da] float32."""
        return self._batched(self.audio, clips)

    def fuse(self, face: np.ndarray, audio: np.ndarray) -> np.ndarray:
        """[T, Dv], [K, Da] → [3, H] float32: the multi, audio and face rows."""
        return np.asarray(self.fusion(face[None], audio[None]), np.float32)[0]
