"""Training side of affectgpt-edge: the AffectGPT model, its presets, tokenizer and checkpoints."""
