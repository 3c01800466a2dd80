"""The committed default detector (models/detector.onnx) is what `python -m export onnx --no-generator` makes.

It is committed so that `pip install .` needs no torch; this keeps it honest: the same graph outputs, within
float tolerance, as a fresh export from CenterFace's PyTorch port, on a real face.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[2]


def outputs(model: Path, blob: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: blob}), strict=True))


def test_the_committed_detector_equals_a_fresh_export(tmp_path, centerface_weights, detector_model, face_image):
    subprocess.run([sys.executable, "-m", "export", "onnx", "--no-generator", "--out", str(tmp_path),
                    "--detector-weights", str(centerface_weights)], check=True, cwd=REPO, capture_output=True)
    blob = np.ascontiguousarray(face_image.transpose(2, 0, 1)[None].astype(np.float32))  # 512 x 512, one face
    committed, fresh = outputs(detector_model, blob), outputs(tmp_path / "detector.onnx", blob)
    assert committed.keys() == fresh.keys() and "heatmap" in committed
    for name, value in committed.items():
        assert value.shape == fresh[name].shape, name
        np.testing.assert_allclose(value, fresh[name], rtol=1e-4, atol=1e-4, err_msg=name)
    assert committed["heatmap"].max() > 0.5  # the face is there: the comparison is not between two blanks
