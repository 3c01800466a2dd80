"""Quantization: INT8 QDQ models in two flavours (ONNX Runtime CPU, TensorRT via Model Optimizer), the layers kept
in float chosen on the tuning split, and the gates every exported model must pass."""
