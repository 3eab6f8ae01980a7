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
from pathlib import Path, PurePosixPath, PureWindowsPath

from runtime.atomic import write_text
from runtime.errors import EdgeError, printable

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


# Numbers that are each in range can multiply into tens of GB (4096² pixels × 256 frames is 51 GB of float32):
# what one window may cost is bounded as well. Far above any real encoder (CLIP-L: 8 × 3 × 224² × 4 = 4.8 MB;
# HuBERT: 8 clips × 32,000 samples × 4 = 1 MB), far below what a device has.
MAX_WINDOW_PIXEL_BYTES = 512 << 20  # num_frames × 3 × image_size² float32 values
MAX_WINDOW_AUDIO_BYTES = 128 << 20  # num_clips × clip samples float32 values


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
    # a window in which the detector finds a face in no frame: "frame" — encode the full frames (what every bundle
    # so far was trained on: the detector misses most drawn faces, so they learnt from full frames); "absent" — zero
    # the vision features, as the ablation takes vision away (for a bundle trained so)
    no_face: str = "frame"
    # the crop around the detector's box, a fraction of its side per side: 0.25 what every bundle before this field
    # was trained with; the expression network learnt from tight FER2013 crops and reads real faces better at 0.1
    face_margin: float = 0.25

    def __post_init__(self):
        _check("preprocessing", [
            ("num_frames", self.num_frames, 1, 256), ("image_size", self.image_size, 8, 4096),
            ("sample_rate", self.sample_rate, 1000, 192000), ("num_clips", self.num_clips, 1, 256),
            ("clip_seconds", self.clip_seconds, 0.01, 60), ("face_margin", self.face_margin, 0.0, 1.0)])
        if self.audio_norm_scope not in ("clip", "video"):
            raise BundleError(f"preprocessing.audio_norm_scope must be 'clip' or 'video', not {self.audio_norm_scope!r}")
        if self.no_face not in ("frame", "absent"):
            raise BundleError(f"preprocessing.no_face must be 'frame' or 'absent', not {self.no_face!r}")
        if self.channel_order not in ("rgb", "bgr"):
            raise BundleError(f"preprocessing.channel_order must be 'rgb' or 'bgr', not {self.channel_order!r}")
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or not all(
                isinstance(x, (int, float)) and x > 0 for x in self.image_std):
            raise BundleError("preprocessing.image_mean / image_std must hold 3 numbers each, the std ones positive")
        pixels = self.num_frames * 3 * self.image_size ** 2 * 4
        if pixels > MAX_WINDOW_PIXEL_BYTES:
            raise BundleError(f"preprocessing.num_frames {self.num_frames} × image_size {self.image_size}² makes "
                              f"{pixels / 2**20:,.0f} MiB of pixels per window; at most {MAX_WINDOW_PIXEL_BYTES >> 20} MiB")
        audio = self.num_clips * self.clip_samples * 4
        if audio > MAX_WINDOW_AUDIO_BYTES:
            raise BundleError(f"preprocessing.num_clips {self.num_clips} × clip_seconds {self.clip_seconds:g} × "
                              f"sample_rate {self.sample_rate} makes {audio / 2**20:,.0f} MiB of audio per window; "
                              f"at most {MAX_WINDOW_AUDIO_BYTES >> 20} MiB")

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
        for name in ("template", "question", "bos_token", "eos_token", "stop_text"):
            if not isinstance(getattr(self, name), str):
                raise BundleError(f"prompt.{name} must be a string, not {type(getattr(self, name)).__name__}")
        if not all(isinstance(p, str) for p in self.placeholders):
            raise BundleError("prompt.placeholders must be strings")
        # An answer is cut at the first stop text: an empty one is found at position 0 (every answer empty), a
        # blank one at the first space. A model that ends on its eos token alone keeps the default.
        if not self.stop_text.strip():
            raise BundleError(f"prompt.stop_text is {self.stop_text!r}: it must hold visible text (the reference's "
                              "is '###'); leave it out for the default")


@dataclass
class FileEntry:
    path: str
    sha256: str
    bytes: int
    kind: str = ""  # e.g. "F16" for a GGUF, "fp32" for an ONNX file

    def __post_init__(self):
        if not isinstance(self.path, str) or not isinstance(self.kind, str):
            raise BundleError("manifest files: path and kind must be strings")
        if not isinstance(self.sha256, str) or not _SHA256.fullmatch(self.sha256):
            raise BundleError(f"manifest files: {printable(self.path)} has sha256 {printable(repr(self.sha256))}, "
                              "not 64 hex digits")
        _check(f"files[{printable(self.path)}]", [("bytes", self.bytes, 0, 1 << 50)])


_SHA256 = re.compile(r"[0-9a-f]{64}")


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
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise BundleError(f"manifest is missing or has a malformed field: {printable(err)}") from None


def _base_model_entry(raw) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("key", "sha256")) or not \
            _SHA256.fullmatch(raw["sha256"]):
        raise BundleError("manifest base_model must hold a key (a string) and a sha256 (64 hex digits)")
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
    """Read and check a bundle's manifest: version, required files present, sizes and sha256 match, nothing
    unlisted in the folder, every ONNX graph's external data a listed file."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise BundleError(f"bundle folder not found: {printable(bundle_dir)}")
    path = bundle_dir / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"{printable(bundle_dir)} is not a bundle: it has no {MANIFEST_NAME}")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{printable(path)} is not valid JSON: {printable(err)}") from None
    if not isinstance(raw, dict):
        raise BundleError(f"{printable(path)} holds no JSON object")
    manifest = Manifest.from_dict(raw)
    in_template = re.findall(r"<[A-Za-z]+Here>", manifest.prompt.template)
    if sorted(in_template) != sorted(manifest.prompt.placeholders) or len(manifest.prompt.placeholders) != len(
            manifest.prompt.placeholder_rows):
        raise BundleError(f"the prompt template holds {', '.join(in_template) or 'no placeholders'} but the manifest "
                          f"lists {printable(', '.join(manifest.prompt.placeholders))} with rows "
                          f"{list(manifest.prompt.placeholder_rows)}")
    missing = [role for role in REQUIRED_ROLES if role not in manifest.files]
    if missing:
        raise BundleError(f"manifest lists no file for {', '.join(missing)}")
    for role, entry in manifest.files.items():
        file = confined(bundle_dir, entry.path, f"files.{role}.path")
        if not file.is_file():
            raise BundleError(f"bundle file for {printable(role)} is missing: {printable(file)}")
        size = file.stat().st_size
        if size != entry.bytes:
            raise BundleError(f"{printable(file)} has {size} bytes, the manifest says {entry.bytes}: the bundle is damaged")
        if verify_hashes and sha256_file(file) != entry.sha256:
            raise BundleError(f"{printable(file)} does not match its sha256 in the manifest: the bundle is damaged")
    unlisted = unlisted_files(bundle_dir, manifest)
    engines = [name for name in unlisted if name.split("/")[0] == ENGINES_DIR]
    if engines:
        raise BundleError(f"{printable(bundle_dir)} carries TensorRT engines ({printable(engines[0])}): an engine is "
                          "never taken from a bundle; remove the folder and build them on this device with python -m "
                          "quant.tensorrt (they go to a cache outside the bundle)")
    if unlisted:
        raise BundleError(f"{printable(bundle_dir)} holds files its manifest does not list: "
                          f"{printable(', '.join(unlisted[:5]))} (every file a graph or model reads, ONNX external "
                          "data included, must be listed with its sha256; a notes file may be README, LICENSE, NOTICE "
                          "or COPYING, plain or .md / .txt)")
    check_external_data(bundle_dir, manifest)
    return manifest


def confined(bundle_dir: Path, relative: str, what: str = "path") -> Path:
    """A path of the manifest as a file inside the bundle; absolute paths, `..` and links that lead out are refused."""
    path = Path(relative)
    if not relative or "\0" in relative or path.is_absolute() or ".." in path.parts:
        raise BundleError(f"manifest {printable(what)} {printable(repr(relative))} is not a plain path inside the bundle")
    file = bundle_dir / path
    if not file.resolve().is_relative_to(bundle_dir.resolve()):
        raise BundleError(f"manifest {printable(what)} {printable(repr(relative))} leads outside the bundle (a link?)")
    return file


# Files a bundle may hold besides those its manifest lists: notes for people, at the top, as plain files.
# Nothing reads them (an ONNX graph that names one as its data is refused by check_external_data), and their
# names and suffixes are few, so they cannot stand in for a model's split parts or data files.
_NOTES = re.compile(r"^(README|LICENSE|NOTICE|COPYING)(\.(md|txt|rst))?$", re.I)


def unlisted_files(bundle_dir: Path, manifest: Manifest) -> list[str]:
    """Every file, link or other entry under the bundle folder that its manifest does not list (folders that
    hold only listed files are fine; hidden files are not exempt)."""
    listed = {Path(e.path).as_posix() for e in manifest.files.values()} | {MANIFEST_NAME}
    out = []
    for folder, dirs, files in os.walk(bundle_dir, followlinks=False):
        here = Path(folder)
        for name in sorted(files) + sorted(d for d in dirs if (here / d).is_symlink()):
            file = here / name
            relative = file.relative_to(bundle_dir).as_posix()
            if relative in listed:
                continue
            if here == bundle_dir and _NOTES.match(name) and not file.is_symlink() and file.is_file():
                continue
            out.append(relative)
    return sorted(out)


def onnx_roles(manifest: Manifest) -> list[str]:
    """The roles whose files ONNX Runtime or TensorRT parse as graphs."""
    return [role for role, entry in manifest.files.items()
            if role.split("@", 1)[0] in ENCODER_ROLES or entry.path.lower().endswith(".onnx")]


def external_data(bundle_dir: Path, manifest: Manifest, role: str) -> list[str]:
    """The listed paths (relative to the bundle) that the graph of `role` takes tensor data from; a location
    that is not a listed, plain file inside the bundle is refused. ONNX Runtime before 1.24 follows absolute
    paths and links out of the folder, so this check, not the runtime's version, is the defence."""
    from runtime.onnx_external import OnnxFormatError, external_refs

    entry = manifest.files[role]
    graph = bundle_dir / entry.path
    shown = printable(entry.path)
    try:
        refs = external_refs(graph)
    except OnnxFormatError as err:
        raise BundleError(f"{shown} (files.{printable(role)}) is not a readable ONNX model: {err}") from None
    except OSError as err:
        raise BundleError(f"cannot read {shown}: {printable(err)}") from None
    listed = {Path(e.path).as_posix() for e in manifest.files.values()}
    out = []
    for ref in refs:
        where = f"{shown} takes tensor {printable(repr(ref.tensor))} from"
        location = ref.location
        if location is None:
            raise BundleError(f"{shown}: tensor {printable(repr(ref.tensor))} is marked external without a location")
        if (not location or "\0" in location or "\\" in location or PurePosixPath(location).is_absolute()
                or PureWindowsPath(location).drive or ".." in PurePosixPath(location).parts):
            raise BundleError(f"{where} {printable(repr(location))}: external data must be a plain relative path "
                              "inside the bundle")
        relative = (PurePosixPath(Path(entry.path).parent.as_posix()) / location).as_posix()
        relative = PurePosixPath(*[p for p in PurePosixPath(relative).parts if p != "."]).as_posix()
        if relative not in listed:
            raise BundleError(f"{where} {printable(repr(location))}, which the manifest does not list with a sha256: "
                              "the bundle may not add data to a graph")
        parts = PurePosixPath(relative).parts
        for i in range(1, len(parts) + 1):
            if (bundle_dir.joinpath(*parts[:i])).is_symlink():
                raise BundleError(f"{where} {printable(repr(location))}, a link: external data must be a plain file")
        if relative not in out:
            out.append(relative)
    return out


def check_external_data(bundle_dir: Path, manifest: Manifest) -> None:
    for role in onnx_roles(manifest):
        external_data(bundle_dir, manifest, role)


def sources_digest(bundle_dir: str | os.PathLike, manifest: Manifest, roles) -> str:
    """sha256 over the graphs of `roles` and the external data they read, by their manifest sha256: what a
    TensorRT engine built from them depends on (with the device it was built on, runtime.backends.engine_key)."""
    bundle_dir = Path(bundle_dir)
    digest = hashlib.sha256()
    for role in sorted(roles):
        entry = manifest.files[role]
        digest.update(f"{role}\0{entry.sha256}\n".encode())
        for data in external_data(bundle_dir, manifest, role):
            sha = next(e.sha256 for e in manifest.files.values() if Path(e.path).as_posix() == data)
            digest.update(f"{role}\0{data}\0{sha}\n".encode())
    return digest.hexdigest()


ENGINES_DIR = "engines"  # the folder where engines once lived inside a bundle: refused now
ENGINES_LIST = "engines.json"  # in each engine cache folder: {file: {"sha256": ..., "bytes": ...}}


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
