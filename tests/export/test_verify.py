"""The verify gates on real models and real wider-train images: a faithful model passes, a lossy one fails."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgeanon.inference.ort import OrtBackend
from export.all_steps import reject_failed
from export.paths import CENTERFACE_WEIGHTS, REPO_ROOT
from export.quantization.compare import compare_detectors, psnr
from export.quantization.verify import MAX_ABS_DIFF, verify
from tests.export.broken_models import blind_copy

LIMIT = 3  # wider-train images per accuracy check: enough to tell a faithful model from a broken one


@pytest.fixture
def models(tmp_path, detector_model):
    if not CENTERFACE_WEIGHTS.is_file():
        pytest.skip(f"{CENTERFACE_WEIGHTS} missing (make setup imports it)")
    shutil.copy(detector_model, tmp_path / "detector.onnx")
    return tmp_path


def test_psnr():
    a = np.zeros((3, 8, 8))
    assert math.isinf(psnr(a, a, 255.0))
    assert psnr(a, a + 255.0, 255.0) == pytest.approx(0.0)
    assert psnr(a, a + 2.55, 255.0) == pytest.approx(40.0)


def test_every_artefact_is_gated_on_both_halves_and_absent_generator_is_skipped(models, shared_data):
    for name in ("detector.int8.onnx", "detector.int8-trt.onnx", "detector.fp16.onnx"):
        shutil.copy(models / "detector.onnx", models / name)  # identical: zero drop
    report = verify(models, shared_data, limit=LIMIT, parity_count=1)
    gates = {g["name"]: g for g in report["gates"]}
    parity = gates["detector pytorch-vs-onnx max abs diff"]
    assert parity["passed"] and parity["value"] <= MAX_ABS_DIFF
    for flavour in ("int8", "int8-trt"):
        for half in ("tune", "holdout"):
            for metric in ("recall", "ap"):
                gate = gates[f"detector {flavour} {metric} drop vs fp32 ({half} half)"]
                assert gate["value"] == 0.0 and gate["passed"] and gate["key"] == f"detector-{flavour}"
    assert gates["detector fp16 share of fp32 faces found"]["value"] == 1.0
    assert gates["generator gates"]["passed"] is None and "missing" in gates["generator gates"]["note"]
    assert all(g["command"].startswith(f"python -m export verify --models {models} ") for g in report["gates"])
    assert report["passed"] and report["details"]["detector_accuracy"]["tune"]["fp32"]["faces"] > 0
    assert report["details"]["detector_accuracy_images"] == {"tune": LIMIT, "holdout": LIMIT}


def test_lossy_int8_fails_its_gate_exits_1_and_is_rejected(models, shared_data):
    blind_copy(models / "detector.onnx", models / "detector.int8-trt.onnx")
    shutil.copy(models / "detector.onnx", models / "detector.int8.onnx")
    report_path = models / "report.json"
    command = [sys.executable, "-m", "export", "verify", "--models", str(models), "--data", str(shared_data),
               "--limit", str(LIMIT), "--only", "detector-int8,detector-int8-trt", "--report", str(report_path)]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr
    assert "FAIL  detector int8-trt recall drop vs fp32 (tune half)" in result.stderr
    assert "PASS  detector int8 recall drop vs fp32 (holdout half)" in result.stderr
    report = json.loads(report_path.read_text())
    assert not report["passed"] and "detector int8-trt recall drop vs fp32 (holdout half)" in report["failed"]
    failed = next(g for g in report["gates"] if g["passed"] is False)
    assert failed["command"].endswith(f"--only detector-int8-trt --limit {LIMIT}")
    rejected = reject_failed(models, report)
    assert rejected == [str(models / "detector.int8-trt.rejected.onnx")]
    assert not (models / "detector.int8-trt.onnx").exists() and (models / "detector.int8.onnx").exists()


def test_unknown_gate_is_a_clear_error(models, shared_data):
    result = subprocess.run([sys.executable, "-m", "export", "verify", "--models", str(models), "--data",
                             str(shared_data), "--only", "detector-int4"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--only detector-int4: choose from" in result.stderr


def test_missing_data_is_a_clear_error(models, tmp_path):
    result = subprocess.run([sys.executable, "-m", "export", "verify", "--models", str(models), "--data",
                             str(tmp_path / "nowhere")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "boxes.json" in result.stderr


def test_only_the_failing_flavour_is_rejected(tmp_path):
    for name in ("detector.int8.onnx", "detector.int8-trt.onnx", "generator.int8.onnx"):
        (tmp_path / name).write_bytes(b"model")
    report = {"gates": [
        {"name": "detector int8 recall drop vs fp32", "passed": True},
        {"name": "detector int8-trt ap drop vs fp32", "passed": False},
        {"name": "generator int8 PSNR vs fp32 (face region, dB)", "passed": None},
    ]}
    assert reject_failed(tmp_path, report) == [str(tmp_path / "detector.int8-trt.rejected.onnx")]
    assert (tmp_path / "detector.int8.onnx").is_file() and (tmp_path / "generator.int8.onnx").is_file()


def test_engine_comparison_logic_with_onnx_runtime_standing_in(detector_model, face_image):
    same = compare_detectors(OrtBackend(detector_model), OrtBackend(detector_model), [face_image, face_image[:, ::-1]])
    assert same.reference_faces == 2 and same.match_rate == 1.0 and same.extra == 0
