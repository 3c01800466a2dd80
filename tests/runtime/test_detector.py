"""Detector runtime on real faces: decode, landmarks, padding, input formats, the `detect` CLI and its errors.

The weight import (PyTorch, host side) is tested in tests/export/test_import_weights.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeanon.detector import FaceDetector
from edgeanon.images import load_image

REPO_ROOT = Path(__file__).resolve().parents[2]

ASTRONAUT_FACE = (180, 55, 272, 180)  # hand-checked on the picture


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_finds_the_astronaut_with_landmarks_inside(face_image, detector_model):
    faces = FaceDetector.from_path(detector_model).detect(face_image)
    assert len(faces) == 1
    face = faces[0]
    assert iou(face.box, ASTRONAUT_FACE) > 0.6
    x1, y1, x2, y2 = face.box
    assert face.landmarks.shape == (5, 2)
    assert ((face.landmarks[:, 0] > x1) & (face.landmarks[:, 0] < x2)).all()
    assert ((face.landmarks[:, 1] > y1) & (face.landmarks[:, 1] < y2)).all()
    left_eye, right_eye, nose, mouth_l, mouth_r = face.landmarks
    assert left_eye[1] < nose[1] < mouth_l[1] and left_eye[0] < right_eye[0]


def test_padding_keeps_coordinates_on_odd_sizes(face_image, detector_model):
    detector = FaceDetector.from_path(detector_model)
    odd = np.ascontiguousarray(face_image[:-13, :-7])  # 499 x 505: padded, never stretched
    assert iou(detector.detect(odd)[0].box, detector.detect(face_image)[0].box) > 0.97
    scaled = FaceDetector.from_path(detector_model, input_scale=0.5).detect(face_image)
    assert iou(scaled[0].box, ASTRONAUT_FACE) > 0.5


def test_grayscale_and_rgba_inputs_are_handled(face_image, detector_model, tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "gray.png"), cv2.cvtColor(face_image, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(face_image, cv2.COLOR_BGR2BGRA))
    detector = FaceDetector.from_path(detector_model)
    for name in ("gray.png", "rgba.png"):
        image = load_image(tmp_path / name)
        assert image.shape == face_image.shape and image.dtype == np.uint8
        assert len(detector.detect(image)) == 1


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeanon", *args], capture_output=True, text=True, cwd=REPO_ROOT)


def test_detect_cli_reports_bad_files_and_keeps_going(face_image, detector_model, tmp_path):
    import cv2

    good = tmp_path / "in"
    good.mkdir()
    cv2.imwrite(str(good / "astronaut.jpg"), face_image)
    (good / "empty.jpg").write_bytes(b"")
    (good / "notes.png").write_text("not an image")
    big = np.zeros((4320, 7680, 3), np.uint8)
    big[1000:1000 + face_image.shape[0], 2000:2000 + face_image.shape[1]] = face_image
    cv2.imwrite(str(good / "eight_k.jpg"), big)
    out = tmp_path / "faces.json"
    result = run_cli("detect", str(good), "--json", str(out), "--detector-model", str(detector_model))
    assert result.returncode == 1
    assert "empty.jpg: empty file" in result.stderr and "notes.png: not a readable image" in result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads(out.read_text())
    assert set(data) == {"astronaut.jpg", "eight_k.jpg"}
    face = data["astronaut.jpg"][0]
    assert len(face["landmarks"]) == 5 and 0 < face["score"] <= 1
    assert len(data["eight_k.jpg"]) == 1
    assert data["eight_k.jpg"][0]["box"][0] > 2000


def test_detect_cli_missing_or_corrupt_model(face_image, tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "a.jpg"), face_image)
    result = run_cli("detect", str(tmp_path / "a.jpg"), "--detector-model", str(tmp_path / "nope.onnx"))
    assert result.returncode == 2 and "nope.onnx: model file not found" in result.stderr
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 100)
    result = run_cli("detect", str(tmp_path / "a.jpg"), "--detector-model", str(corrupt))
    assert result.returncode == 2 and "corrupt.onnx: not a loadable ONNX model" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("bad", [0.0, 1.5])
def test_threshold_is_validated(detector_model, bad):
    with pytest.raises(ValueError):
        FaceDetector.from_path(detector_model, threshold=bad)
