"""The bundle manifest: every key, its version, and the checks that decide whether a bundle fits.

A bundle is a folder holding manifest.json, vision.onnx, audio.onnx, fusion.onnx and one or more GGUF files.
The manifest records what the exporter knew (dims, preprocessing, prompt, token ids, sha256 of each file,
parity measured at export) so that the runtime can refuse a bundle that does not fit before it answers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from runtime.atomic import write_text
from runtime.errors import EdgeError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"

# File roles: the keys of manifest["files"].
VISION = "vision"
AUDIO = "audio"
FUSION = "fusion"
LLM = "llm"
REQUIRED_ROLES = (VISION, AUDIO, FUSION, LLM)
ENCODER_ROLES = (VISION, AUDIO, FUSION)
FP32 = "fp32"


def variant_role(base: str, variant: str | None) -> str:
    """File role of a variant: "vision" for the fp32 original, "vision@fp16", "llm@q4_k_m", ..."""
    return base if not variant or variant in (FP32, "reference") else f"{base}@{variant}"

# Placeholders of the reference prompt, in the order fusion.onnx emits its three rows.
MULTI_PLACEHOLDER = "<MultiHere>"
AUDIO_PLACEHOLDER = "<AudioHere>"
FACE_PLACEHOLDER = "<FaceHere>"
FRAME_PLACEHOLDER = "<FrameHere>"  # the frame model: raw frames instead of face crops
FUSED_ORDER = (MULTI_PLACEHOLDER, AUDIO_PLACEHOLDER, FACE_PLACEHOLDER)  # the face model's; the frame model ends in <FrameHere>

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class BundleError(EdgeError):
    """A bundle that is missing, damaged or does not fit this runtime; the message says why."""


def _check(section: str, fields: list[tuple[str, object, float, float]]) -> None:
    """Each (name, value, lowest, highest): a number in range, else a BundleError naming the field."""
    for name, value, low, high in fields:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise BundleError(f"{section}.{name} is {value!r}: it must be a number from {low:g} to {high:g}")


@dataclass(frozen=True)
class Preprocessing:
    """How media becomes encoder input. Shared by training and inference (runtime/preprocess.py)."""

    num_frames: int = 8
    image_size: int = 224
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD
    channel_order: str = "rgb"  # "bgr" replicates the released face model, which saw BGR crops as RGB
    sample_rate: int = 16000
    num_clips: int = 8
    clip_seconds: float = 2.0
    audio_normalize: bool = True  # zero mean, unit variance, as Wav2Vec2FeatureExtractor
    # over what: "video" — one mean and variance over all clips of a clip / window, as the released AffectGPT
    # (its feature extractor takes the [8, samples] tensor as one example); "clip" — each clip on its own
    # (the shipped demo was trained so; a bundle keeps the mode it was trained with)
    audio_norm_scope: str = "clip"
    face_crop: bool = False  # crop the largest face before the vision encoder (the released model saw face crops)

    def __post_init__(self):
        _check("preprocessing", [
            ("num_frames", self.num_frames, 1, 256), ("image_size", self.image_size, 8, 4096),
            ("sample_rate", self.sample_rate, 1000, 192000), ("num_clips", self.num_clips, 1, 256),
            ("clip_seconds", self.clip_seconds, 0.01, 60)])
        if self.audio_norm_scope not in ("clip", "video"):
            raise BundleError(f"preprocessing.audio_norm_scope must be 'clip' or 'video', not {self.audio_norm_scope!r}")
        if self.channel_order not in ("rgb", "bgr"):
            raise BundleError(f"preprocessing.channel_order must be 'rgb' or 'bgr', not {self.channel_order!r}")
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or not all(
                isinstance(x, (int, float)) and x > 0 for x in self.image_std):
            raise BundleError("preprocessing.image_mean / image_std must hold 3 numbers each, the std ones positive")

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))


@dataclass(frozen=True)
class Dims:
    vision_dim: int  # per-frame feature width of vision.onnx
    audio_dim: int  # per-clip feature width of audio.onnx
    llm_width: int  # width of each fused row = the LLM's embedding width
    vocab_size: int

    def __post_init__(self):
        _check("dims", [(k, getattr(self, k), 1, 1 << 24) for k in ("vision_dim", "audio_dim", "llm_width", "vocab_size")])


@dataclass(frozen=True)
class PromptSpec:
    template: str  # holds {subtitle} and {question} and the three placeholders
    question: str
    bos_token: str
    eos_token: str
    bos_id: int
    eos_id: int
    stop_text: str = "###"
    inference_bos: bool = False  # the reference trains with bos but answers without it
    placeholder_rows: tuple[int, ...] = (1, 1, 1)  # fused rows per placeholder, in `placeholders` order
    placeholders: tuple[str, ...] = FUSED_ORDER

    def __post_init__(self):
        _check("prompt", [("bos_id", self.bos_id, 0, 1 << 31), ("eos_id", self.eos_id, 0, 1 << 31)]
               + [(f"placeholder_rows[{i}]", n, 1, 4096) for i, n in enumerate(self.placeholder_rows)])


@dataclass
class FileEntry:
    path: str
    sha256: str
    bytes: int
    kind: str = ""  # e.g. "F16" for a GGUF, "fp32" for an ONNX file


@dataclass
class Manifest:
    name: str
    dims: Dims
    preprocessing: Preprocessing
    prompt: PromptSpec
    files: dict[str, FileEntry]
    versions: dict[str, str] = field(default_factory=dict)
    weights: str = "trained"  # "random": fusion / LoRA never trained (latency and pipeline tests), answers mean nothing
    parity: dict[str, float] = field(default_factory=dict)
    # quantized variants as scored by the accuracy gate: {"encoders@fp16": {"status": "passed", ...}, ...}
    variants: dict[str, dict] = field(default_factory=dict)
    # the variants the runtime runs unless told otherwise: {"encoders": "fp16", "llm": "q8_0"}; only passed ones
    defaults: dict[str, str] = field(default_factory=dict)
    # a base LLM the bundle does not carry (runtime/base_models.py): {"key": ..., "sha256": ...}; the `llm` files are
    # then LoRA adapters applied on top of it at run time
    base_model: dict[str, str] | None = None
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict) -> "Manifest":
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise BundleError(
                f"bundle format version {version!r} is not supported: this runtime reads version {FORMAT_VERSION}"
            )
        try:
            prep = dict(raw["preprocessing"])
            for key in ("image_mean", "image_std"):
                prep[key] = tuple(prep[key])
            prompt = dict(raw["prompt"])
            prompt["placeholders"] = tuple(prompt["placeholders"])
            prompt["placeholder_rows"] = tuple(prompt.get("placeholder_rows", (1, 1, 1)))
            return cls(
                name=raw["name"],
                dims=Dims(**raw["dims"]),
                preprocessing=Preprocessing(**prep),
                prompt=PromptSpec(**prompt),
                files={role: FileEntry(**entry) for role, entry in raw["files"].items()},
                versions=dict(raw.get("versions", {})),
                weights=str(raw.get("weights", "trained")),
                parity=dict(raw.get("parity", {})),
                variants=dict(raw.get("variants", {})),
                defaults=dict(raw.get("defaults", {})),
                base_model=_base_model_entry(raw.get("base_model")),
                format_version=version,
            )
        except (KeyError, TypeError) as err:
            raise BundleError(f"manifest is missing or has a malformed field: {err}") from None


def _base_model_entry(raw) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("key", "sha256")):
        raise BundleError("manifest base_model must hold a key and a sha256 (strings)")
    return {"key": raw["key"], "sha256": raw["sha256"]}


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_entry(bundle_dir: str | os.PathLike, name: str, kind: str = "") -> FileEntry:
    path = Path(bundle_dir) / name
    return FileEntry(path=name, sha256=sha256_file(path), bytes=path.stat().st_size, kind=kind)


def write_manifest(bundle_dir: str | os.PathLike, manifest: Manifest) -> None:
    """Write manifest.json atomically (a reader never sees half a manifest)."""
    write_text(Path(bundle_dir) / MANIFEST_NAME, manifest.to_json())


def read_manifest(bundle_dir: str | os.PathLike, verify_hashes: bool = True) -> Manifest:
    """Read and check a bundle's manifest: version, required files present, sizes and sha256 match."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise BundleError(f"bundle folder not found: {bundle_dir}")
    path = bundle_dir / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"{bundle_dir} is not a bundle: it has no {MANIFEST_NAME}")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{path} is not valid JSON: {err}") from None
    manifest = Manifest.from_dict(raw)
    in_template = re.findall(r"<[A-Za-z]+Here>", manifest.prompt.template)
    if sorted(in_template) != sorted(manifest.prompt.placeholders) or len(manifest.prompt.placeholders) != len(
            manifest.prompt.placeholder_rows):
        raise BundleError(f"the prompt template holds {', '.join(in_template) or 'no placeholders'} but the manifest "
                          f"lists {', '.join(manifest.prompt.placeholders)} with rows {list(manifest.prompt.placeholder_rows)}")
    missing = [role for role in REQUIRED_ROLES if role not in manifest.files]
    if missing:
        raise BundleError(f"manifest lists no file for {', '.join(missing)}")
    for role, entry in manifest.files.items():
        file = confined(bundle_dir, entry.path, f"files.{role}.path")
        if not file.is_file():
            raise BundleError(f"bundle file for {role} is missing: {file}")
        size = file.stat().st_size
        if size != entry.bytes:
            raise BundleError(f"{file} has {size} bytes, the manifest says {entry.bytes}: the bundle is damaged")
        if verify_hashes and sha256_file(file) != entry.sha256:
            raise BundleError(f"{file} does not match its sha256 in the manifest: the bundle is damaged")
    unlisted = unlisted_files(bundle_dir, manifest)
    if unlisted:
        raise BundleError(f"{bundle_dir} holds files its manifest does not list: {', '.join(unlisted[:5])} (every file a "
                          "graph or model reads, ONNX external data included, must be listed with its sha256)")
    return manifest


def confined(bundle_dir: Path, relative: str, what: str = "path") -> Path:
    """A path of the manifest as a file inside the bundle; absolute paths, `..` and links that lead out are refused."""
    path = Path(relative)
    if path.is_absolute() or ".." in path.parts or not relative:
        raise BundleError(f"manifest {what} {relative!r} is not a plain path inside the bundle")
    file = bundle_dir / path
    if not file.resolve().is_relative_to(bundle_dir.resolve()):
        raise BundleError(f"manifest {what} {relative!r} leads outside the bundle (a link?)")
    return file


# Files a bundle may hold besides those its manifest lists: notes for people, and engines built on the device
# (checked against their own list, engines.json, when they are used).
_FREE_NAMES = re.compile(r"^(README|LICENSE|NOTICE|COPYING)(\..*)?$", re.I)


def unlisted_files(bundle_dir: Path, manifest: Manifest) -> list[str]:
    listed = {Path(e.path).as_posix() for e in manifest.files.values()} | {MANIFEST_NAME}
    out = []
    for file in sorted(bundle_dir.rglob("*")):
        relative = file.relative_to(bundle_dir)
        if (not file.is_file() or relative.parts[0] == ENGINES_DIR or any(p.startswith(".") for p in relative.parts)
                or _FREE_NAMES.match(file.name)):
            continue
        if relative.as_posix() not in listed:
            out.append(relative.as_posix())
    return out


ENGINES_DIR = "engines"
ENGINES_LIST = "engines.json"  # in each engines/<gpu key>/ folder: {file: {"sha256": ..., "bytes": ...}}


def check_engines(folder: Path, paths: list[Path], verify_hashes: bool = True) -> None:
    """TensorRT engines are hashed as every bundle file is: each must be in its folder's engines.json, unchanged."""
    listing = folder / ENGINES_LIST
    try:
        listed = json.loads(listing.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BundleError(f"{listing} is missing or unreadable ({err}): rebuild the engines with python -m quant.tensorrt") from None
    for path in paths:
        entry = listed.get(path.name) if isinstance(listed, dict) else None
        if not isinstance(entry, dict):
            raise BundleError(f"{path.name} is not in {listing}: rebuild the engines with python -m quant.tensorrt")
        if path.stat().st_size != entry.get("bytes") or (verify_hashes and sha256_file(path) != entry.get("sha256")):
            raise BundleError(f"{path} does not match {listing}: the engine is damaged or was replaced")
