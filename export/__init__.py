"""Export side of affectgpt-edge: encoders and pre-fusion to ONNX, the LoRA-merged LLM to GGUF, one bundle."""
