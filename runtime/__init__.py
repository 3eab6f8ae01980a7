"""Device side of affectgpt-edge: bundle loading, preprocessing, ONNX Runtime encoders and llama.cpp decoding.

Nothing here imports torch or the training / export code: this package is what ships to the device, and it
holds the contracts both sides share (manifest, preprocessing, prompt, label parsing).
"""

__version__ = "0.1.0"
