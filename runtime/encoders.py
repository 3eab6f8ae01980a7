"""The encoder stage: vision.onnx, audio.onnx and fusion.onnx in ONNX Runtime.

fusion.onnx ends exactly at the embedding boundary: three rows (multi, audio, face) of the LLM's width.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort


class EncoderError(RuntimeError):
    pass


class OnnxModel:
    """One ONNX file in one ONNX Runtime session; records the provider that actually runs it."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None,
                 providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=list(providers))
        except Exception as err:  # ORT raises its own Fail / InvalidProtobuf types
            raise EncoderError(f"ONNX Runtime cannot load {path}: {err}") from None
        self.path = str(path)
        self.provider = self.session.get_providers()[0]
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.input_shapes = [i.shape for i in self.session.get_inputs()]
        self.output_shape = self.session.get_outputs()[0].shape

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        return self.session.run(None, dict(zip(self.inputs, arrays)))[0]


class Encoders:
    """frames → [T, Dv], clips → [K, Da], both → [3, H]."""

    def __init__(self, vision_path, audio_path, fusion_path, threads: int | None = None):
        self.vision = OnnxModel(vision_path, threads)
        self.audio = OnnxModel(audio_path, threads)
        self.fusion = OnnxModel(fusion_path, threads)

    @property
    def fused_width(self):
        """The width of fusion.onnx's rows as the graph states it (an int, or a name if dynamic)."""
        return self.fusion.output_shape[-1]

    def encode_frames(self, pixel_values: np.ndarray) -> np.ndarray:
        """[T, 3, S, S] float32 → [T, Dv] float32."""
        return self.vision(pixel_values.astype(np.float32, copy=False))

    def encode_clips(self, clips: np.ndarray) -> np.ndarray:
        """[K, samples] float32 → [K, Da] float32."""
        return self.audio(clips.astype(np.float32, copy=False))

    def fuse(self, face: np.ndarray, audio: np.ndarray) -> np.ndarray:
        """[T, Dv], [K, Da] → [3, H] float32: the multi, audio and face rows."""
        return self.fusion(face[None], audio[None])[0]
