"""The tone a generated face takes, on real dark-skinned faces (UTKFace, tuning split): the darkest faces keep their
own lightness, also on a skin-coloured backdrop inside a loose box (skips without the shared data)."""

from __future__ import annotations

import zipfile

import cv2
import numpy as np
import pytest

from edgeanon.anonymize import tone
from edgeanon.detector import FaceDetector
from export import datasets
from export.eval.crowd import skin_tone
from export.eval.identity import demographics
from export.eval.incontext import soft_ellipse
from export.splits import TUNE, in_generator_split

DARKEST = 10
BACKDROP = (120, 140, 230)  # salmon pink: a magazine cover; it passes a colour test for skin


@pytest.fixture(scope="module")
def dark_faces(shared_data, detector_model):
    """The DARKEST darkest of 60 tuning photos labelled black: (photo, box, landmarks, skin L*) each."""
    zf = zipfile.ZipFile(shared_data / datasets.UTK_ZIP)
    names = sorted(n for n in zf.namelist() if n.endswith(".jpg") and (demographics(n) or (0, 0, -1))[2] == 1
                   and in_generator_split(n, TUNE, halved=False))[:60]
    detector = FaceDetector.from_path(detector_model, threads=1)
    pad = datasets.UTK_PAD
    found = []
    for name in names:
        photo = cv2.copyMakeBorder(datasets.decode(zf.read(name)), *[pad] * 4, cv2.BORDER_CONSTANT, value=0)
        faces = detector.detect(photo)
        if faces and faces[0].landmarks is not None:
            found.append((photo, faces[0].box[:4], faces[0].landmarks, skin_tone(photo, faces[0].landmarks)[0]))
    assert len(found) >= 40
    return sorted(found, key=lambda f: f[3])[:DARKEST]


def _on_backdrop(photo: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo's face (a soft ellipse 1.2x its box) on the pink backdrop, and a box twice the face's size."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    alpha = np.zeros(photo.shape[:2] + (1,), np.float32)
    ex1, ey1, ex2, ey2 = (int(round(v)) for v in (cx - 0.6 * w, cy - 0.6 * h, cx + 0.6 * w, cy + 0.6 * h))
    alpha[ey1:ey2, ex1:ex2] = soft_ellipse(ey2 - ey1, ex2 - ex1)
    out = photo * alpha + np.array(BACKDROP, np.float32) * (1 - alpha)
    return (out + 0.5).astype(np.uint8), np.array([cx - w, cy - h, cx + w, cy + h], np.float32)


def test_the_darkest_faces_keep_their_own_lightness(dark_faces):
    errors = [tone.target(photo, box, "face", 1.6, landmarks=lm)[0] - skin for photo, box, lm, skin in dark_faces]
    before = [tone.target(photo, box, "box", 1.6)[0] - skin for photo, box, lm, skin in dark_faces]
    assert np.median(np.abs(errors)) < 3.0
    assert np.median(np.abs(errors)) < np.median(np.abs(before))


def test_the_darkest_faces_on_a_pink_backdrop_in_a_loose_box_keep_their_tone(dark_faces):
    for photo, box, lm, _ in dark_faces:
        scene, loose = _on_backdrop(photo, box)
        own = tone.target(photo, box, "face", 1.6, landmarks=lm)
        found = tone.target(scene, loose, "face", 1.6, landmarks=lm)
        assert abs(found[0] - own[0]) < 3.0 and abs(found[1] - own[1]) < 3.0
    # The box's rule takes the backdrop for skin: the faces would come out lighter and pinker.
    lighter = [tone.target(*_on_backdrop(photo, box), "box", 1.6)[0] - skin for photo, box, lm, skin in dark_faces]
    assert np.median(lighter) > 5
