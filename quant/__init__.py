"""Quantization of bundles: GGUF ladder and ONNX precisions behind an accuracy gate."""
