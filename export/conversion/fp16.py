"""`python -m export fp16`: FP16 ONNX variants for GPU runtimes, keeping FP32 inputs and outputs.

Uses the float16 converter that ships inside onnxruntime (onnxruntime.transformers.float16, the same code as
onnxconverter-common) with keep_io_types, so callers feed and read float32 exactly as with the FP32 model.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import onnx
from onnxruntime.transformers.float16 import convert_float_to_float16

from export.onnx_file import ExportError, load_checked, save_onnx
from export.paths import MODELS_DIR

log = logging.getLogger(__name__)

# Ops whose FP16 versions lose too much (or that TensorRT/ORT handle better in float): left in FP32.
KEEP_FP32_OPS = ["Resize", "Range", "RandomNormalLike"]


def fp16_path(fp32_path: Path, out_dir: str | Path | None = None) -> Path:
    """detector.onnx -> detector.fp16.onnx."""
    folder = fp32_path.parent if out_dir is None else Path(out_dir)
    return folder / (fp32_path.name.split(".")[0] + ".fp16.onnx")


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder nodes so each comes after its inputs' producers (the converter appends its casts at the end)."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError("graph has a cycle or an undefined input")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if all(n is not r for r in ready)]
    del graph.node[:]
    graph.node.extend(ordered)


def convert_fp16(fp32_path: str | Path, out_path: str | Path) -> Path:
    """Write the FP16 variant of an FP32 model (FP32 graph inputs/outputs kept), atomically."""
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    model = load_checked(fp32_path)
    half = convert_float_to_float16(model, keep_io_types=True, op_block_list=KEEP_FP32_OPS)
    topological_sort(half.graph)
    meta = {p.key: p.value for p in model.metadata_props}
    meta["edgeanon.precision"] = json.dumps({"weights": "float16", "io": "float32", "source": fp32_path.name})
    save_onnx(half, out_path, meta)
    log.info("wrote %s", out_path)
    return out_path


def run(args: argparse.Namespace) -> int:
    models_dir = Path(args.models)
    written = []
    try:
        for name in args.model.split(","):
            src = models_dir / f"{name}.onnx"
            if not src.is_file() and name == "generator" and args.model == "detector,generator":
                log.warning("%s not found: generator skipped", src)
                continue
            written.append(str(convert_fp16(src, fp16_path(src, args.out))))
    except ExportError as exc:
        log.error("%s", exc)
        return 2
    print(json.dumps(written, indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fp16", help="FP16 ONNX variants (FP32 inputs/outputs kept) for GPU runtimes",
                       description="Convert MODEL.onnx to MODEL.fp16.onnx: weights and activations in float16, "
                                   "graph inputs and outputs still float32 (casts at the edges), for TensorRT "
                                   "strongly-typed builds and GPU runtimes. ONNX Runtime's CPU kernels gain "
                                   "nothing from it: use MODEL.int8.onnx on CPU.")
    p.add_argument("--models", default=str(MODELS_DIR), help="folder with MODEL.onnx (default: %(default)s)")
    p.add_argument("--model", default="detector,generator", help="detector, generator or both (comma list)")
    p.add_argument("--out", help="output folder (default: beside the FP32 model)")
    p.set_defaults(func=run)
