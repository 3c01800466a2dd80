"""QDQ models: the two flavours, which layers stay in float (by role, name or pattern), and writing a result
with its provenance."""

from __future__ import annotations

import fnmatch
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from export.onnx_file import ExportError, save_onnx

log = logging.getLogger(__name__)

AUTO = "auto"  # keep-float choice made by the sensitivity sweep on the tuning half (tuning.py)
ROLES = ("first", "heads", "last")
WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


@dataclass(frozen=True)
class Flavour:
    """How one target runtime wants its QDQ model, and which tool makes it."""

    name: str
    suffix: str
    tool: str
    description: str


FLAVOURS = {
    "cpu": Flavour("cpu", ".int8.onnx", "onnxruntime.quantization",
                   "ONNX Runtime CPU: uint8 asymmetric activations, int8 per-channel weights"),
    "trt": Flavour("trt", ".int8-trt.onnx", "nvidia-modelopt",
                   "TensorRT: int8 symmetric Q/DQ, zero points 0, sensitive layers in float"),
}


@dataclass
class QuantResult:
    """What one quantization run produced."""

    model: str
    source: str
    output: str
    flavour: str
    keep_float: list[str]
    calibration_inputs: int
    seconds: float
    nodes_quantized: int = 0
    extra: dict = field(default_factory=dict)


def output_path(fp32_path: Path, flavour: Flavour, out_dir: str | Path | None = None) -> Path:
    """detector.onnx -> detector.int8.onnx / detector.int8-trt.onnx (beside it, or in out_dir)."""
    folder = fp32_path.parent if out_dir is None else Path(out_dir)
    return folder / (fp32_path.name.split(".")[0] + flavour.suffix)


def _consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    table: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            table.setdefault(name, []).append(node)
    return table


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output}


def resolve_keep_float(model: onnx.ModelProto, keep: Iterable[str]) -> list[str]:
    """Turn roles and node names into node names to exclude from quantization.

    Roles: `first` = the convolutions that read a graph input; `heads` / `last` = the convolutions that
    produce a graph output (through element-wise tails such as Sigmoid). Anything else is a node name or a
    glob pattern over node names (`/up*`).
    """
    producers = _producers(model)
    consumers = _consumers(model)
    names = {n.name for n in model.graph.node}
    picked: list[str] = []

    def add(node: onnx.NodeProto) -> None:
        if node.name not in picked:
            picked.append(node.name)

    for item in keep:
        item = item.strip()
        if not item:
            continue
        if item == AUTO:
            raise ExportError("--keep-float auto: the sensitivity sweep is for the detector (both flavours) "
                                "and the TensorRT-flavour generator")
        if item == "first":
            for graph_input in model.graph.input:
                for node in consumers.get(graph_input.name, []):
                    add(node)
        elif item in ("heads", "last"):
            # walk back from each output through element-wise tails up to (and including) the weighted layers
            stack = [producers[o.name] for o in model.graph.output if o.name in producers]
            while stack:
                node = stack.pop()
                if node.name in picked:
                    continue
                add(node)
                if node.op_type not in WEIGHTED_OPS:
                    stack += [producers[i] for i in node.input if i in producers]
        elif item in names:
            add(next(n for n in model.graph.node if n.name == item))
        elif any(ch in item for ch in "*?["):
            matched = [n for n in model.graph.node if fnmatch.fnmatchcase(n.name, item)]
            if not matched:
                raise ExportError(f"--keep-float {item!r}: the pattern matches no node of the model")
            for node in matched:
                add(node)
        else:
            raise ExportError(f"--keep-float {item!r}: not a role ({', '.join(ROLES)}), node name or pattern")
    return picked


def write_quantized(model: onnx.ModelProto, source: onnx.ModelProto, out_path: Path, provenance: dict,
                    result: QuantResult) -> QuantResult:
    """Save a quantized model with the source's metadata plus `edgeanon.quantization`; fill in the counts."""
    meta = {p.key: p.value for p in source.metadata_props}
    meta["edgeanon.quantization"] = json.dumps(provenance)
    save_onnx(model, out_path, meta)
    result.nodes_quantized = sum(1 for n in model.graph.node if n.op_type == "DequantizeLinear")
    log.info("wrote %s (%d calibration inputs, kept float: %s)", out_path, result.calibration_inputs,
             result.keep_float or "none")
    return result
