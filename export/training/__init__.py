"""Training: the face generator, its training crops, the face prior it learns from, and the gate its weights pass."""
