"""Multiply-accumulates (MACs) of the detector and the generator, counted from their ONNX graphs.

    python -m bench.model_macs [--models models] [--sizes 1280x720,640x360,1920x1080]

The graph's shapes are inferred for each input size (the detector pads each side to a multiple of 32, as
edgeanon.detector does), then every Conv, ConvTranspose, Gemm and MatMul is counted: a Conv costs
output elements x (input channels / groups) x kernel area. Element-wise ops, activations and resizes are
left out (a few percent at most of these models). Prints a table; the numbers are the arithmetic the
models ask for, not a speed: docs/guide.md turns them into cameras per Jetson on paper.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import onnx
from onnx import shape_inference

from edgeanon.detector import MULTIPLE
from edgeanon.models import MODELS_DIR

COUNTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _dims(info: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value for d in info.type.tensor_type.shape.dim]


def count_macs(model: onnx.ModelProto, inputs: dict[str, list[int]]) -> int:
    """MACs of one run of `model` with the given input shapes (batch included)."""
    graph = model.graph
    for value in graph.input:
        if value.name in inputs:
            dims = value.type.tensor_type.shape.dim
            for d, n in zip(dims, inputs[value.name], strict=True):
                d.ClearField("dim_param")
                d.dim_value = n
    inferred = shape_inference.infer_shapes(model, strict_mode=True).graph
    shapes = {v.name: _dims(v) for v in [*inferred.input, *inferred.value_info, *inferred.output]}
    shapes.update({t.name: list(t.dims) for t in graph.initializer})
    total = 0
    for node in inferred.node:
        if node.op_type not in COUNTED:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            weight = shapes[node.input[1]]  # (out, in / groups, kh, kw)
            total += math.prod(shapes[node.output[0]]) * math.prod(weight[1:])
        elif node.op_type == "ConvTranspose":
            weight = shapes[node.input[1]]  # (in, out / groups, kh, kw): each input element feeds a kernel
            total += math.prod(shapes[node.input[0]]) * math.prod(weight[1:])
        else:  # Gemm, MatMul: output elements x the shared dimension
            a = shapes[node.input[0]]
            k = a[-2] if node.op_type == "Gemm" and attrs.get("transA", 0) else a[-1]
            total += math.prod(shapes[node.output[0]]) * k
    return total


def padded(size: int) -> int:
    return -(-size // MULTIPLE) * MULTIPLE


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=Path, default=MODELS_DIR, help="folder with detector.onnx, generator.onnx")
    p.add_argument("--sizes", default="1920x1080,1280x720,640x360",
                   help="detector input sizes WxH, before padding to a multiple of 32 (default: %(default)s)")
    args = p.parse_args(argv)
    print("| model | input | GMACs |")
    print("|---|---|---|")
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        shape = [1, 3, padded(height), padded(width)]
        macs = count_macs(onnx.load(str(args.models / "detector.onnx")), {"input": shape})
        print(f"| detector | {width}x{height} (run at {shape[3]}x{shape[2]}) | {macs / 1e9:.2f} |")
    macs = count_macs(onnx.load(str(args.models / "generator.onnx")),
                      {"condition": [1, 9, 128, 128], "latent": [1, 32]})
    print(f"| generator | one face, 128x128 | {macs / 1e9:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
