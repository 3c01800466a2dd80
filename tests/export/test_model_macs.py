"""bench.model_macs counts a Conv, a ConvTranspose and a Gemm as the textbook formulas say, and finds the
detector's cost growing with its input area."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bench.model_macs import count_macs


def tiny_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    weights = {
        "w_conv": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),  # 3 -> 4 channels, 3x3, pad 1
        "w_up": rng.normal(size=(4, 2, 2, 2)).astype(np.float32),  # 4 -> 2 channels, 2x2, stride 2
        "w_fc": rng.normal(size=(2 * 16 * 16, 5)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w_conv"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["a", "w_up"], ["b"], strides=[2, 2]),
        helper.make_node("Flatten", ["b"], ["c"]),
        helper.make_node("Gemm", ["c", "w_fc"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])
    graph = helper.make_graph(nodes, "tiny", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_each_counted_op_by_its_formula():
    conv = 4 * 8 * 8 * (3 * 3 * 3)  # output elements x input channels x kernel area
    up = 4 * 8 * 8 * (2 * 2 * 2)  # input elements x output channels x kernel area
    fc = 5 * 512  # output elements x the shared dimension
    assert count_macs(tiny_model(), {"x": [1, 3, 8, 8]}) == conv + up + fc


def test_the_detector_costs_grow_with_the_input_area(detector_model):
    small = count_macs(onnx.load(str(detector_model)), {"input": [1, 3, 384, 640]})
    large = count_macs(onnx.load(str(detector_model)), {"input": [1, 3, 768, 1280]})
    assert small > 1e9 and abs(large / small - 4.0) < 0.01
