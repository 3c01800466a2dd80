"""Models broken on purpose, for the gates and checks that must catch them."""

from __future__ import annotations

import onnx
from onnx import numpy_helper


def blind_copy(src, dst):
    """The detector with its heatmap bias pushed down: it finds almost nothing (a model that leaks faces)."""
    model = onnx.load(str(src))
    conv = next(n for n in model.graph.node if n.name == "/heatmap/Conv")
    for init in model.graph.initializer:
        if init.name == conv.input[2]:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) - 8.0, init.name))
    onnx.save(model, str(dst))
