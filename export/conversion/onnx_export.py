"""Export the PyTorch models to clean ONNX: opset 17, dynamic axes, folded, simplified, checked, with metadata."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import onnx
import onnxslim
import torch

from export.conversion.import_weights import load_centerface
from export.models.generator import export_generator_onnx
from export.onnx_file import save_onnx
from export.paths import CENTERFACE_WEIGHTS, MODELS_DIR

log = logging.getLogger(__name__)
OPSET = 17


def simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    """Constant folding and graph simplification with onnxslim."""
    return onnxslim.slim(model)


def save_checked(model: onnx.ModelProto, out_path: Path, metadata: dict[str, str]) -> None:
    """Attach metadata, run onnx.checker with shape inference (full check), write atomically."""
    save_onnx(model, out_path, metadata, full_check=True)


def export_detector_onnx(weights: str | Path = CENTERFACE_WEIGHTS,
                         out_path: str | Path = MODELS_DIR / "detector.onnx") -> Path:
    """CenterFace -> ONNX with batch norm folded and dynamic batch/height/width."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model = load_centerface(weights).fold_batchnorm().eval()
    dummy = torch.zeros(1, 3, 224, 320)
    axes = {"input": {0: "batch", 2: "height", 3: "width"}}
    axes.update({name: {0: "batch", 2: "height_4", 3: "width_4"} for name in model.output_names})
    tmp = out_path.with_name(f".{out_path.name}.raw")
    try:
        torch.onnx.export(model, dummy, str(tmp), opset_version=OPSET, dynamo=False, do_constant_folding=True,
                          input_names=["input"], output_names=list(model.output_names), dynamic_axes=axes)
        graph = simplify(onnx.load(str(tmp)))
    finally:
        tmp.unlink(missing_ok=True)
    save_checked(graph, out_path, {
        "edgeanon.model": "centerface",
        "edgeanon.input": json.dumps({"layout": "NCHW", "color": "RGB", "range": [0, 255], "mean": [0, 0, 0],
                                      "std": [1, 1, 1], "multiple_of": 32, "stride": 4}),
        "edgeanon.outputs": json.dumps(list(model.output_names)),
    })
    log.info("wrote %s", out_path)
    return out_path


def export_generator(weights: str | Path, out_path: str | Path) -> Path:
    """Generator -> ONNX (export.models.generator's export), then simplified, checked, with input metadata."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.raw")
    try:
        export_generator_onnx(weights, tmp)
        raw = onnx.load(str(tmp))
        meta = {p.key: p.value for p in raw.metadata_props}
        graph = simplify(raw)
    finally:
        tmp.unlink(missing_ok=True)
    meta.update({
        "edgeanon.model": "generator",
        "edgeanon.input": json.dumps({
            "condition": {"layout": "NCHW", "channels": ["R", "G", "B", "mask", "lm0", "lm1", "lm2", "lm3", "lm4"],
                          "rgb_range": [-1, 1], "rgb_masked": True, "mask_range": [0, 1],
                          "built_by": "edgeanon.anonymize.crops.network_input"},
            "latent": {"distribution": "standard normal", "seeded_by": "track id"}}),
        "edgeanon.outputs": json.dumps({"face": {"layout": "NCHW", "color": "RGB", "range": [-1, 1]}}),
    })
    save_checked(graph, out_path, meta)
    log.info("wrote %s", out_path)
    return out_path


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    export_detector_onnx(args.detector_weights, out_dir / "detector.onnx")
    if not args.no_generator:
        if Path(args.generator_weights).is_file():
            export_generator(args.generator_weights, out_dir / "generator.onnx")
        else:
            log.warning("%s not found: generator not exported", args.generator_weights)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("onnx", help="export detector and generator from PyTorch to ONNX (FP32)",
                       description="Opset 17, dynamo=False, dynamic axes, batch norm folded, simplified with "
                                   "onnxslim, onnx.checker-validated, normalization metadata in the model properties.")
    p.add_argument("--out", default=str(MODELS_DIR), help="output folder (default: %(default)s)")
    p.add_argument("--detector-weights", default=str(CENTERFACE_WEIGHTS), help="CenterFace state dict")
    p.add_argument("--generator-weights", default=str(MODELS_DIR / "generator.pt"), help="generator state dict")
    p.add_argument("--no-generator", action="store_true", help="export the detector only")
    p.set_defaults(func=run)
