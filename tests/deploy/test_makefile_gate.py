"""The Makefile keeps the INT8 gate's outcome in a stamp: a failed gate is not re-run by the next `make`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from export.paths import REPO_ROOT


@pytest.fixture
def workdir(tmp_path, detector_model):
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    shutil.copy(REPO_ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / ".venv").symlink_to((REPO_ROOT / ".venv").resolve())
    (tmp_path / "models").mkdir()
    shutil.copy(detector_model, tmp_path / "models" / "detector.onnx")
    return tmp_path


def make(folder, data, *extra):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    # detector.onnx is taken as built (-o) and the code dependencies are left out: only the gate rule runs.
    return subprocess.run(["make", "-s", "-o", "models/detector.onnx", *extra, "models/.int8-gate", "INT8_CODE=",
                           f"DATA={data}"], cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_without_data_nothing_is_built_and_nothing_is_stamped(workdir):
    result = make(workdir, workdir / "no-data")
    assert result.returncode == 0, result.stderr
    assert "no shared data" in result.stdout and not (workdir / "models" / ".int8-gate").exists()


def test_a_failed_gate_is_stamped_and_not_rerun(workdir):
    data = workdir / "data"
    (data / "wider-train").mkdir(parents=True)
    (data / "wider-train" / "boxes.json").write_text(json.dumps({}))
    (data / "wider-calib").mkdir()  # no calibration images: quantization fails
    result = make(workdir, data)
    assert result.returncode == 0, result.stderr
    stamp = workdir / "models" / ".int8-gate"
    assert stamp.read_text().startswith("failed") and "FP32 detector stays the default" in result.stdout
    assert not (workdir / "models" / "detector.int8.onnx").exists()
    assert make(workdir, data, "-q").returncode == 0  # up to date: the gate is not run again
