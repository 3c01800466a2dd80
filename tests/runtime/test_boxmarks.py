"""Landmarks for given boxes (anonymize --boxes with gan): found by the detector inside the box, else a template."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgeanon.anonymize import crops
from edgeanon.anonymize.boxmarks import DETECTED, TEMPLATE, THRESHOLD, BoxLandmarks, template_landmarks
from edgeanon.detector import FaceDetector

FACE = np.array([181, 58, 270, 178], np.float32)  # the astronaut's face


@pytest.fixture(scope="module")
def finder(detector_model) -> BoxLandmarks:
    return BoxLandmarks(FaceDetector.from_path(detector_model, threshold=THRESHOLD, input_scale=1.0))


def test_landmarks_found_inside_a_given_box_match_the_full_image_detection(face_image, finder, detector_model):
    full = FaceDetector.from_path(detector_model).detect(face_image)[0]
    [face] = finder.faces(face_image, [FACE])
    assert face.source == DETECTED and np.array_equal(face.box, FACE)
    eye_dist = float(np.hypot(*(full.landmarks[1] - full.landmarks[0])))
    assert np.abs(face.landmarks - full.landmarks).max() < 0.15 * eye_dist


def test_a_small_face_is_upscaled_until_the_detector_sees_it(face_image, finder):
    small = cv2.resize(face_image, None, fx=0.22, fy=0.22, interpolation=cv2.INTER_AREA)
    [face] = finder.faces(small, [FACE * 0.22])  # about 20 x 26 px
    assert face.source == DETECTED
    assert crops.landmarks_plausible(face.box, face.landmarks)


def test_a_box_without_a_face_gets_the_template(face_image, finder):
    box = np.array([330, 330, 420, 440], np.float32)  # suit and wall
    [face] = finder.faces(face_image, [box])
    assert face.source == TEMPLATE
    assert np.array_equal(face.landmarks, template_landmarks(box))
    assert crops.landmarks_plausible(box, face.landmarks)


def test_template_is_an_upright_symmetric_face_in_the_box():
    lm = template_landmarks(np.array([100, 50, 200, 170]))
    assert np.all((lm[:, 0] > 100) & (lm[:, 0] < 200) & (lm[:, 1] > 50) & (lm[:, 1] < 170))
    assert lm[0, 1] == lm[1, 1] and lm[0, 0] < lm[1, 0] and lm[2, 1] < lm[3, 1]
    assert abs((lm[0, 0] + lm[1, 0]) / 2 - 150) < 1e-3
