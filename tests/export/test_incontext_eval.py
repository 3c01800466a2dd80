"""The in-context identity evaluation's scene making: a face laid into a scene at a known box and size."""

from __future__ import annotations

import numpy as np

from export.eval.incontext import FACE_SIZES, lay_in, soft_ellipse


def test_soft_ellipse_is_opaque_inside_and_clear_at_the_corners():
    a = soft_ellipse(100, 80)
    assert a[50, 40, 0] == 1.0 and a[0, 0, 0] == 0.0 and a[99, 79, 0] == 0.0


def test_laid_in_face_has_the_size_asked_for_and_the_photo_under_its_box(face_image):
    scene = np.zeros((600, 900, 3), np.uint8)
    face_box = np.array([181, 58, 270, 178], np.float32)
    photo = face_image[0:300, 100:360]
    for seed in range(5):
        out, box = lay_in(scene, photo, face_box - [100, 0, 100, 0], np.zeros((0, 4), np.float32),
                          np.random.default_rng(seed))
        side = max(box[2] - box[0], box[3] - box[1])
        assert FACE_SIZES[0] - 1 <= side <= FACE_SIZES[1] + 1
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= 900 and box[3] <= 600
        cx, cy = int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2)
        assert out[cy, cx].sum() > 100  # the face's centre is photo, not the black scene
        assert (out[np.all(out == 0, axis=2)]).size > 0  # the rest of the scene is still there


def test_a_photo_too_big_for_the_scene_is_skipped(face_image):
    assert lay_in(np.zeros((100, 100, 3), np.uint8), face_image, np.array([0, 0, 400, 400], np.float32),
                  np.zeros((0, 4), np.float32), np.random.default_rng(0)) is None
