"""Conversion: CenterFace weights into PyTorch, PyTorch models into ONNX, ONNX into FP16."""
