"""The on-device engine check's Polygraphy comparison, with ONNX Runtime runners standing in for TensorRT."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeanon.inference.errors import ModelError
from edgeanon.inference.manifest import EngineManifest, sha256_file, write_manifest

pytest.importorskip("polygraphy", reason="Polygraphy is in requirements-dev.txt")

from export.quantization.engine_check import (  # noqa: E402
    check_engine_file,
    compare_runners,
    detector_inputs,
    fit_blob,
    format_table,
    generator_inputs,
    onnxrt_runner,
    tolerance,
)
from tests.export.broken_models import blind_copy  # noqa: E402


def test_inputs_are_fitted_to_the_profile_shape(face_image):
    feeds = detector_inputs([face_image, face_image[:100]], "input", 384, 640)
    assert [f["input"].shape for f in feeds] == [(1, 3, 384, 640)] * 2
    assert feeds[0]["input"].max() > 100 and not feeds[1]["input"][0, :, 300:].any()  # padded below the photo
    blob = np.ones((1, 3, 40, 70), np.float32)
    out = fit_blob(blob, 64, 64)
    assert out.shape == (1, 3, 64, 64) and out[0, 0, :40, :64].all() and not out[0, 0, 40:].any()
    conditions = [np.zeros((9, 128, 128), np.float32)] * 9
    batches = generator_inputs(conditions, ["condition", "latent"], 4)
    assert len(batches) == 2 and batches[0]["condition"].shape == (4, 9, 128, 128)
    assert batches[0]["latent"].shape == (4, 32) and not np.array_equal(batches[0]["latent"], batches[1]["latent"])


def test_polygraphy_passes_the_same_model_and_fails_a_broken_one(detector_model, tmp_path, face_image):
    feeds = detector_inputs([face_image], "input", 512, 512)
    same = compare_runners(onnxrt_runner(detector_model), onnxrt_runner(detector_model), feeds, "fp32")
    assert same["passed"] and same["inputs"] == 1 and max(same["mean_absdiff"].values()) == 0.0
    blind_copy(detector_model, tmp_path / "blind.onnx")
    broken = compare_runners(onnxrt_runner(tmp_path / "blind.onnx"), onnxrt_runner(detector_model), feeds, "fp32")
    assert not broken["passed"] and broken["mean_absdiff"]["heatmap"] > 1e-4


def test_an_engine_is_checked_against_the_onnx_model_its_manifest_names(detector_model, tmp_path, face_image):
    shutil.copy(detector_model, tmp_path / "detector.int8-trt.onnx")
    engine = tmp_path / "detector.engine"
    engine.write_bytes(b"stands in for an engine")
    profile = {"input": {"min": [1, 3, 320, 320], "opt": [1, 3, 384, 640], "max": [1, 3, 1088, 1920]}}
    write_manifest(engine, EngineManifest(sha256_file(engine), "detector.int8-trt.onnx", "x", "int8", "10.3.0",
                                          "12.6", "Orin", "36.4.3", "6.2", profile))
    # ONNX Runtime stands in for TensorRT, which cannot run here: the runner factory is the only difference.
    row = check_engine_file(engine, [face_image], tmp_path,
                            runner_for_engine=lambda _: onnxrt_runner(tmp_path / "detector.int8-trt.onnx"))
    assert row["passed"] and row["reference"] == "detector.int8-trt.onnx" and row["input_shape"] == [1, 3, 384, 640]
    assert (row["atol"], row["rtol"]) == tolerance("int8")
    table = format_table([row, {**row, "passed": False}])
    assert table.count("\n") == 3 and "| PASS |" in table and "| FAIL |" in table and "1x3x384x640" in table
    (tmp_path / "detector.int8-trt.onnx").unlink()
    with pytest.raises(ModelError, match="source model .* is missing"):
        check_engine_file(engine, [face_image], tmp_path)


def test_unknown_precision_has_no_tolerance():
    with pytest.raises(ModelError, match="no tolerance"):
        tolerance("int4")
