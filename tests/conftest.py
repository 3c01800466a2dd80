"""Shared fixtures: the shared data folder, the default detector model, real images with real faces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from export.paths import REPO_ROOT, shared_data_dir

DETECTOR = REPO_ROOT / "models" / "detector.onnx"
# Real mosquitto brokers (plain and TLS + ACL): fixtures mosquitto_broker and secure_broker.
pytest_plugins = ["devkit.broker"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "wider-train" / "boxes.json").is_file():
        pytest.skip(f"shared data not found at {path} (set EDGEANON_DATA or place ../shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def detector_model() -> Path:
    if not DETECTOR.is_file():
        subprocess.run([sys.executable, "-m", "export", "import-weights"], check=True, cwd=REPO_ROOT)
        subprocess.run([sys.executable, "-m", "export", "onnx", "--no-generator"], check=True, cwd=REPO_ROOT)
    return DETECTOR


@pytest.fixture(scope="session")
def face_image() -> np.ndarray:
    """scikit-image's astronaut (public domain, one frontal face), as BGR uint8."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
