"""Device side of affectgpt-edge: bundle loading, preprocessing, ONNX Runtime encoders and llama.cpp decoding.

Nothing here imports torch or the training / export code: this package is what ships to the device, and it
holds the contracts both sides share (manifest, preprocessing, prompt, label parsing).
"""

__version__ = "0.1.0"

# The Python API (runtime/api.py), loaded on first use: importing runtime.manifest from training code must not
# pull in media or inference libraries.
_API = ("Stream", "WindowAnswer", "answer_clip", "open_bundle")


def __getattr__(name):
    if name in _API:
        from runtime import api

        return getattr(api, name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")


__all__ = list(_API)
