"""Host-side export toolkit: PyTorch models, weights import, ONNX/INT8/TensorRT export, training, eval."""
