"""Per-layer quantization sensitivity: which layers of a QDQ model to leave in float, chosen by measurement.

The sweep takes the fully quantized model and, one layer at a time, lets that layer read float inputs again
(its input Q/DQ pairs bypassed, its float weights restored): the drop in output error is the layer's
sensitivity. Layers are then left in float, most sensitive first, until the model passes a target on the
tuning data (`choose_kept`). Everything works on ONNX graphs and ONNX Runtime: no TensorRT needed.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

log = logging.getLogger(__name__)

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")

# error(model_path) -> a number, lower is better (output error against FP32 on tuning inputs)
ErrorFn = Callable[[Path], float]
# passes(model_path) -> (passed, what was measured), on the tuning data
PassFn = Callable[[Path], tuple[bool, dict]]


@dataclass(frozen=True)
class LayerScore:
    """How much the output error falls when one layer is left in float."""

    node: str
    op_type: str
    error_in_float: float
    gain: float  # error(all quantized) - error(this layer in float); larger = more sensitive


def quantized_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Compute nodes (not Q/DQ) that read at least one DequantizeLinear output, in graph order."""
    dq_outputs = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return [n for n in model.graph.node if n.op_type not in QDQ_OPS and any(i in dq_outputs for i in n.input)]


def bypass(qdq: onnx.ModelProto, fp32: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    """A copy of `qdq` where the named nodes read the same float tensors as in `fp32` (Q/DQ on their inputs gone).

    Node names are shared by the FP32 model and its quantized version (ONNX Runtime and Model Optimizer keep
    them); float weights the QDQ model no longer holds are copied from the FP32 model.
    """
    model = onnx.ModelProto()
    model.CopyFrom(qdq)
    wanted = set(names)
    float_nodes = {n.name: n for n in fp32.graph.node if n.name in wanted}
    missing = wanted - set(float_nodes)
    if missing:
        raise ValueError(f"nodes not in the FP32 model: {sorted(missing)[:5]}")
    producers = {o: n for n in model.graph.node for o in n.output}
    have = {i.name for i in model.graph.initializer}
    float_inits = {i.name: i for i in fp32.graph.initializer}
    for node in model.graph.node:
        if node.name not in wanted:
            continue
        source = float_nodes[node.name]
        if len(source.input) != len(node.input):
            raise ValueError(f"{node.name}: {len(node.input)} inputs here, {len(source.input)} in the FP32 model")
        for k, name in enumerate(node.input):
            producer = producers.get(name)
            if producer is None or producer.op_type != "DequantizeLinear":
                continue
            wanted_name = source.input[k]
            if wanted_name in float_inits:
                # ONNX Runtime names a bias's DequantizeLinear output after the bias itself: the float copy
                # then needs a name of its own.
                own = wanted_name if wanted_name not in producers else f"{wanted_name}.float"
                if own not in have:
                    init = onnx.TensorProto()
                    init.CopyFrom(float_inits[wanted_name])
                    init.name = own
                    model.graph.initializer.append(init)
                    have.add(own)
                wanted_name = own
            node.input[k] = wanted_name
    prune(model)
    return model


def prune(model: onnx.ModelProto) -> None:
    """Remove nodes whose outputs nobody reads, then initializers nobody reads (in place)."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    while True:
        read = {i for n in graph.node for i in n.input} | outputs
        dead = [n for n in graph.node if not any(o in read for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = {i for n in graph.node for i in n.input} | outputs
    for init in [i for i in graph.initializer if i.name not in read]:
        graph.initializer.remove(init)


def saved(model: onnx.ModelProto, folder: Path, name: str) -> Path:
    """Write a model into a (temporary) folder for a measurement; its path."""
    path = folder / name
    onnx.save(model, str(path))
    return path


def sweep(qdq: onnx.ModelProto, fp32: onnx.ModelProto, error: ErrorFn,
          candidates: Sequence[str] | None = None) -> tuple[float, list[LayerScore]]:
    """Error of the fully quantized model, and each quantized layer's score, most sensitive first."""
    nodes = [n for n in quantized_nodes(qdq) if candidates is None or n.name in candidates]
    with tempfile.TemporaryDirectory(prefix="edgeanon-sweep-") as tmp:
        base = error(saved(qdq, Path(tmp), "base.onnx"))
        scores = []
        for i, node in enumerate(nodes):
            value = error(saved(bypass(qdq, fp32, [node.name]), Path(tmp), f"layer{i}.onnx"))
            scores.append(LayerScore(node.name, node.op_type, value, base - value))
            log.debug("sweep %d/%d %s: %.6g (base %.6g)", i + 1, len(nodes), node.name, value, base)
    scores.sort(key=lambda s: s.gain, reverse=True)
    return base, scores


def keep_counts(total: int) -> list[int]:
    """How many of the most sensitive layers to try in float, in order: 0, 1, 2, 4, 8, ... then all."""
    counts, k = [0], 1
    while k < total:
        counts.append(k)
        k *= 2
    return counts + [total] if total else counts


def choose_kept(qdq: onnx.ModelProto, fp32: onnx.ModelProto, ranking: Sequence[str],
                passes: PassFn) -> tuple[list[str], list[dict]]:
    """The fewest most-sensitive layers to leave in float so that `passes` holds; with every trial measured.

    Doubles the count until a trial passes, then bisects between the last failure and that pass. Raises
    ValueError when even every layer in float does not pass (the target is then out of reach).
    """
    trials: list[dict] = []

    def trial(k: int) -> bool:
        kept = list(ranking[:k])
        with tempfile.TemporaryDirectory(prefix="edgeanon-keep-") as tmp:
            ok, measured = passes(saved(bypass(qdq, fp32, kept) if kept else qdq, Path(tmp), "trial.onnx"))
        trials.append({"kept": k, "passed": ok, **measured})
        log.info("%d layer(s) in float: %s %s", k, "pass" if ok else "fail", measured)
        return ok

    low = None  # largest count known to fail
    for k in keep_counts(len(ranking)):
        if trial(k):
            high = k
            break
        low = k
    else:
        raise ValueError(f"the target is not reached even with all {len(ranking)} quantized layers in float")
    while low is not None and high - low > 1:
        mid = (low + high) // 2
        if trial(mid):
            high = mid
        else:
            low = mid
    return list(ranking[:high]), trials


def heatmap_error(reference: dict[str, np.ndarray], output: dict[str, np.ndarray], floor: float = 0.05) -> float:
    """Mean absolute heatmap difference where either model sees a face (score > floor), plus box-size error there."""
    ref_heat, out_heat = reference["heatmap"][0, 0], output["heatmap"][0, 0]
    region = (ref_heat > floor) | (out_heat > floor)
    if not region.any():
        return 0.0
    heat = float(np.abs(ref_heat - out_heat)[region].mean())
    size = float(np.abs(reference["scale"][0][:, region] - output["scale"][0][:, region]).mean())
    return heat + 0.1 * size
