"""Shared models (edgeanon.batching): real ONNX Runtime, real faces, several camera threads at once."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeanon.batching import BatchGate, SharedModel, batch_limit, batch_profile, has_batch_axis
from edgeanon.defaults import VIDEO_PROFILE
from edgeanon.detector import FaceDetector
from edgeanon.inference import ModelError, open_backend
from edgeanon.selftest import SELFTEST_IMAGE

REPO = Path(__file__).resolve().parents[2]
DETECTOR = REPO / "models" / "detector.onnx"

pytestmark = pytest.mark.skipif(not DETECTOR.is_file(), reason="models/detector.onnx missing (make setup)")


def frames(n: int) -> list[np.ndarray]:
    """n different 640x360 frames, each with the self-test face at another place."""
    face = cv2.imread(str(SELFTEST_IMAGE))
    out = []
    for i in range(n):
        frame = np.full((360, 640, 3), 90 + 20 * i, np.uint8)
        y, x = 40 + 30 * i, 60 + 120 * i
        frame[y:y + face.shape[0], x:x + face.shape[1]] = face
        out.append(frame)
    return out


def detect_together(detectors: list[FaceDetector], gate: BatchGate, images: list[np.ndarray]) -> list:
    """Each detector in its own thread, all inside a frame at once (as camera threads are)."""
    results: list = [None] * len(images)
    inside = threading.Barrier(len(images))

    def work(i: int) -> None:
        with gate.frame():
            inside.wait()
            try:
                results[i] = detectors[i].detect(images[i])
            except Exception as exc:  # the test looks at what each camera got
                results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def three_cameras(backend, max_batch: int) -> tuple[list, SharedModel]:
    """Three cameras' detectors on one shared backend, a frame each at once: what each got, and the model."""
    gate = BatchGate()
    shared = SharedModel(backend, gate, wait_s=5.0, max_batch=max_batch)
    detectors = [FaceDetector(shared, profile=VIDEO_PROFILE) for _ in range(3)]
    try:
        return detect_together(detectors, gate, frames(3)), shared
    finally:
        shared.close()


def test_frames_ready_together_go_in_one_call_with_each_cameras_own_faces():
    backend = open_backend(DETECTOR, "ort", threads=2)
    alone = FaceDetector(open_backend(DETECTOR, "ort", threads=2), profile=VIDEO_PROFILE)
    gate = BatchGate()
    assert has_batch_axis(backend)  # joined here to test the joining; the daemon joins on a GPU (batch_limit)
    shared = SharedModel(backend, gate, wait_s=5.0, max_batch=3, name="detector")
    base = FaceDetector(shared, profile=VIDEO_PROFILE)
    detectors = [copy.deepcopy(base, {id(shared): shared}) for _ in range(3)]
    images = frames(3)
    try:
        got = detect_together(detectors, gate, images)
    finally:
        shared.close()
    assert shared.stats() == {"calls": 1, "requests": 3, "per_call": 3.0}, "one call for the three frames"
    for image, faces in zip(images, got, strict=True):
        expected = alone.detect(image)
        assert len(faces) == len(expected) >= 1
        for f, e in zip(faces, expected, strict=True):
            np.testing.assert_allclose(f.box, e.box, atol=0.5)  # the same faces as alone, in its own frame


def test_a_model_without_a_batch_axis_serves_each_request_in_turn(tmp_path):
    import onnx

    model = onnx.load(str(DETECTOR))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # a fixed batch of one
    fixed = tmp_path / "fixed.onnx"
    onnx.save(model, str(fixed))
    backend = open_backend(fixed, "ort", threads=2)
    assert not has_batch_axis(backend) and has_batch_axis(open_backend(DETECTOR, "ort"))
    assert batch_limit(backend, 4) == 1 and batch_limit(open_backend(DETECTOR, "ort", threads=1), 4) == 1, \
        "ONNX Runtime on the CPU: one call per request"
    got, shared = three_cameras(backend, max_batch=1)
    assert all(len(faces) >= 1 for faces in got)
    assert shared.stats()["calls"] == 3


def test_a_faulting_shared_detector_fails_every_camera_closed(tmp_path):
    from tests.runtime.test_daemon import failing_detector

    got, _ = three_cameras(open_backend(failing_detector(tmp_path / "failing.onnx"), "ort", threads=2), max_batch=3)
    assert all(isinstance(r, Exception) for r in got), got


def test_a_camera_without_a_frame_delays_nobody():
    """Two cameras registered, one with a frame: it runs at once (the gate is settled), not after the wait."""
    backend = open_backend(DETECTOR, "ort", threads=2)
    gate = BatchGate()
    shared = SharedModel(backend, gate, wait_s=3600.0, max_batch=2)
    try:
        got = detect_together([FaceDetector(shared, profile=VIDEO_PROFILE)], gate, frames(1))
        assert len(got[0]) >= 1
    finally:
        shared.close()
    with pytest.raises(ModelError, match="closed"):
        shared.run({"input": np.zeros((1, 3, 32, 32), np.float32)})


def test_batch_profile_for_the_engine():
    assert batch_profile(4) == (1, 4, 4)
    assert batch_profile(0) == (1, 1, 1)
