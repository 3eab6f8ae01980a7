"""Bundle → answer: media → the encode path (runtime/encode.py) → llama.cpp (runtime/answer.py), with per-stage timings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.answer import Answer, answer
from runtime.encode import EncoderInputs, Features, encode, encoder_inputs
from runtime.encoders import Encoders
from runtime.llm import LLM
from runtime.errors import printable
from runtime.manifest import (AUDIO, FP32, FUSION, LLM as LLM_ROLE, VISION, BundleError, Manifest, check_engines,
                              read_manifest, sources_digest, variant_role)
from runtime.media import Clip, read_clip_for
from runtime.task import TASKS, Task
from runtime.timing import Stopwatch


@dataclass(frozen=True)
class RuntimeOptions:
    threads: int | None = None  # None: all cores
    n_ctx: int = 2048
    flash_attn: bool = True
    kv_f32: bool = False  # F32 KV cache: exact parity with PyTorch, more memory
    verify_hashes: bool = True  # sha256 of every bundle file at load
    llm_variant: str | None = None  # e.g. "q4_k_m"; None: the bundle's default (the exported GGUF if none)
    encoder_variant: str | None = None  # "fp32", "fp16", "int8-dynamic", "int8-static"; None: bundle default
    backend: str = "ort-cpu"  # ort-cpu | ort-cuda | ort-trt | tensorrt
    # tensorrt: folder of engines (default: the cache of engines built on this device from this bundle's graphs,
    # runtime.backends.engine_folder); never a folder inside the bundle
    engine_dir: str | None = None
    encoder_batch: int = 2  # frames / clips per encoder call: peak memory against a few % of speed


def open_llm(manifest: Manifest, llm_file: Path, options: RuntimeOptions) -> LLM:
    """The bundle's GGUF, or — for a bundle on an external base model — the base with the bundle's LoRA adapter."""
    kwargs = dict(n_ctx=options.n_ctx, n_threads=options.threads, flash_attn=options.flash_attn, kv_f32=options.kv_f32)
    if manifest.base_model is None:
        return LLM(llm_file, **kwargs)
    from runtime.base_models import BaseModelError, resolve

    try:
        base = resolve(manifest.base_model["key"], manifest.base_model["sha256"], options.verify_hashes)
    except BaseModelError as err:
        raise BundleError(str(err)) from None
    return LLM(base, adapter=llm_file, **kwargs)


def engine_folder_for(bundle_dir: Path, manifest: Manifest, key: str) -> Path:
    """Where the TensorRT engines of this bundle's graphs, built on a device with `key`, are kept: outside the
    bundle, keyed by the fp32 graphs they are built from (and their external data)."""
    from runtime.backends import engine_folder

    return engine_folder(sources_digest(bundle_dir, manifest, [VISION, AUDIO, FUSION]), key)


def _static_dim(shape, axis=-1):
    """A fixed size of `shape` at `axis`; None for a symbolic or dynamic one (a name, None, or TensorRT's -1)."""
    if not -len(shape) <= axis < len(shape):
        return None
    dim = shape[axis]
    return dim if isinstance(dim, int) and dim >= 0 else None


class Pipeline:
    def __init__(self, bundle_dir: str | Path, options: RuntimeOptions = RuntimeOptions()):
        self.bundle_dir = Path(bundle_dir)
        self.options = options
        self.manifest: Manifest = read_manifest(self.bundle_dir, verify_hashes=options.verify_hashes)
        files, defaults = self.manifest.files, self.manifest.defaults
        self.llm_variant = options.llm_variant if options.llm_variant is not None else defaults.get("llm", "")
        self.encoder_variant = (options.encoder_variant if options.encoder_variant is not None
                                else defaults.get("encoders", FP32))
        roles = {base: variant_role(base, self.encoder_variant) for base in (VISION, AUDIO, FUSION)}
        roles[LLM_ROLE] = variant_role(LLM_ROLE, self.llm_variant)
        for base, role in roles.items():
            if role not in files:
                have = sorted({r.split("@", 1)[1] for r in files if r.startswith(base + "@")})
                raise BundleError(f"bundle has no {base} file for variant {printable(repr(role.split('@')[-1]))}"
                                  f" (variants: {printable(', '.join(have)) or 'none'}; make them with python -m quant)")
        path = lambda role: self.bundle_dir / files[role].path  # noqa: E731
        if options.backend == "tensorrt":
            engines = self._engine_paths(roles)
            self.encoders = Encoders(engines[VISION], engines[AUDIO], engines[FUSION], options.threads, "tensorrt",
                                     options.encoder_batch)
        else:
            caches = None
            if options.backend == "ort-trt":
                from runtime.backends import ort_trt_cache

                caches = tuple(ort_trt_cache(sources_digest(self.bundle_dir, self.manifest, [roles[base]]))
                               for base in (VISION, AUDIO, FUSION))
            self.encoders = Encoders(path(roles[VISION]), path(roles[AUDIO]), path(roles[FUSION]), options.threads,
                                     options.backend, options.encoder_batch, engine_caches=caches)
        self._check_encoders()
        self.llm = open_llm(self.manifest, path(roles[LLM_ROLE]), options)
        self._check_llm()

    def _engine_paths(self, roles: dict[str, str]) -> dict[str, Path]:
        from runtime.backends import engine_key

        if self.options.engine_dir:
            folder = Path(self.options.engine_dir)
            if folder.resolve().is_relative_to(self.bundle_dir.resolve()):
                raise BundleError(f"engine folder {printable(folder)} is inside the bundle: an engine is never taken "
                                  "from a bundle; build them on this device with python -m quant.tensorrt")
        else:
            folder = engine_folder_for(self.bundle_dir, self.manifest, engine_key())
        precision = "fp16" if self.encoder_variant in (FP32, "fp16") else "int8"
        paths = {base: folder / f"{base}.{precision}.engine" for base in (VISION, AUDIO, FUSION)}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise BundleError(f"no TensorRT engines for this GPU: {printable(', '.join(missing))} missing; build them "
                              f"with python -m quant.tensorrt --bundle {printable(self.bundle_dir)} --precision {precision}")
        check_engines(folder, list(paths.values()), self.options.verify_hashes)
        return paths

    # --- does the bundle fit? -------------------------------------------------------------------

    def _check_encoders(self) -> None:
        dims, enc = self.manifest.dims, self.encoders
        checks = [
            ("vision.onnx output", _static_dim(enc.vision.output_shape), dims.vision_dim, "vision_dim"),
            ("audio.onnx output", _static_dim(enc.audio.output_shape), dims.audio_dim, "audio_dim"),
            ("fusion.onnx face input", _static_dim(enc.fusion.input_shapes[0]), dims.vision_dim, "vision_dim"),
            ("fusion.onnx audio input", _static_dim(enc.fusion.input_shapes[1]), dims.audio_dim, "audio_dim"),
            ("fusion.onnx output", _static_dim(enc.fusion.output_shape), dims.llm_width, "llm_width"),
            ("fusion.onnx row count", _static_dim(enc.fusion.output_shape, -2), sum(self.manifest.prompt.placeholder_rows),
             "prompt.placeholder_rows"),
        ]
        for what, got, want, key in checks:
            if got is not None and got != want:
                raise BundleError(f"{what} has width {got} but the manifest's {key} is {want}: the bundle is inconsistent")
        # the inputs the preprocessing makes must be what the graphs take, or the first window fails (or a graph
        # made for 4096² frames meets 224² ones only after a warm-up that allocated for the manifest's numbers)
        prep = self.manifest.preprocessing
        inputs = [
            ("vision.onnx input", enc.vision.input_shapes[0], {1: 3, 2: prep.image_size, 3: prep.image_size},
             f"[frames, 3, {prep.image_size}, {prep.image_size}] (preprocessing.image_size)"),
            ("audio.onnx input", enc.audio.input_shapes[0], {1: prep.clip_samples},
             f"[clips, {prep.clip_samples}] (preprocessing.clip_seconds × sample_rate)"),
            ("fusion.onnx face input", enc.fusion.input_shapes[0], {1: prep.num_frames},
             f"[batch, {prep.num_frames}, vision_dim] (preprocessing.num_frames)"),
            ("fusion.onnx audio input", enc.fusion.input_shapes[1], {1: prep.num_clips},
             f"[batch, {prep.num_clips}, audio_dim] (preprocessing.num_clips)"),
        ]
        for what, shape, want, expected in inputs:
            rank = 1 + max(want) if what.startswith(("vision", "audio")) else 3
            if not shape:  # no declared shape: ONNX Runtime checks the inputs when it runs
                continue
            if len(shape) != rank or any(_static_dim(shape, axis) not in (None, size) for axis, size in want.items()):
                raise BundleError(f"{what} has shape {printable(list(shape))} but the manifest's preprocessing makes "
                                  f"{expected}: the bundle is inconsistent")

    def _check_llm(self) -> None:
        fused = _static_dim(self.encoders.fusion.output_shape) or self.manifest.dims.llm_width
        if fused != self.llm.n_embd:
            raise BundleError(
                f"fusion.onnx emits rows of width {fused} but the GGUF LLM embeds {self.llm.n_embd}: "
                "the encoders and the LLM come from different models"
            )
        p = self.manifest.prompt
        for name, token_id in (("bos", p.bos_id), ("eos", p.eos_id)):
            if not 0 <= token_id < self.llm.n_vocab:
                raise BundleError(f"manifest {name} id {token_id} is outside the GGUF vocabulary of {self.llm.n_vocab}")

    # --- answering ------------------------------------------------------------------------------

    def inputs(self, clip: Clip, face_crop: bool | None = None, watch: Stopwatch | None = None) -> EncoderInputs:
        """Clip → encoder inputs, faces cropped as the bundle says (or `face_crop`)."""
        return encoder_inputs(clip.frames, clip.waveform, self.manifest.preprocessing, face_crop, watch)

    def features(self, clip: Clip, watch: Stopwatch | None = None, face_crop: bool | None = None) -> Features:
        """Clip → features and fused rows; face / preprocess / vision / audio / fusion times go to `watch`."""
        return encode(self.encoders, self.inputs(clip, face_crop, watch), watch)

    def answer(self, fused: np.ndarray, subtitle: str = "", task: Task = TASKS["labels"]) -> Answer:
        return answer(self.llm, self.manifest.prompt, fused, subtitle, task)

    def answer_clip(self, clip: Clip, subtitle: str = "", task: Task = TASKS["labels"], face_crop: bool | None = None,
                    watch: Stopwatch | None = None) -> Answer:
        watch = watch or Stopwatch()
        result = self.answer(self.features(clip, watch, face_crop).fused, subtitle, task)
        timings = {**watch.ms, **result.timings_ms, "total": watch.total_ms()}
        result.timings_ms = {k: round(v, 3) for k, v in timings.items()}
        return result

    def answer_file(self, path: str | Path, subtitle: str = "", task: Task = TASKS["labels"],
                    face_crop: bool | None = None) -> Answer:
        watch = Stopwatch()
        clip = read_clip_for(path, self.manifest.preprocessing)
        watch.lap("decode")
        return self.answer_clip(clip, subtitle, task, face_crop, watch)

    def close(self) -> None:
        self.llm.close()
