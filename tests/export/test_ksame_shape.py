"""Dense alignment for the k-Same bank: 68 points on the astronaut's aligned face, and the piecewise-affine warp."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgeanon.anonymize import crops, ksame
from export.training import ksame_shape


@pytest.fixture(scope="module")
def aligned(face_image, faces):
    """The astronaut's face on the bank's canvas, its 5 canvas landmarks, the 2x3 map and its 68 points."""
    m = crops.affine_fit(faces[0].landmarks, ksame.REF_LANDMARKS)
    canvas = cv2.warpAffine(face_image, m, (ksame.REF_SIDE, ksame.REF_SIDE), flags=cv2.INTER_LINEAR)
    lm = np.asarray(faces[0].landmarks, np.float64) @ m[:, :2].T + m[:, 2]
    shape = ksame_shape.ShapeFinder()(face_image, m, False, lm)
    return canvas, lm, m, shape


def test_the_68_points_agree_with_the_detector(aligned, face_image):
    canvas, lm, m, shape = aligned
    assert shape is not None and shape.shape == (68, 2)
    eyes = np.array([shape[ksame_shape.EYES[0]].mean(0), shape[ksame_shape.EYES[1]].mean(0)])
    assert np.linalg.norm(eyes - lm[:2], axis=1).max() < 0.15 * ksame.REF_EYES
    # The mirrored photo's points are the mirror image of these, relabelled (its left eye is this right eye).
    mirrored, mlm = ksame.mirror(canvas, lm)
    flipped = ksame_shape.ShapeFinder()(face_image, m, True, mlm)
    assert flipped is not None
    left_eye = flipped[ksame_shape.EYES[0]].mean(0)
    assert abs(left_eye[0] - (ksame.REF_SIDE - 1 - eyes[1, 0])) < 1.5 and abs(left_eye[1] - eyes[1, 1]) < 1.5
    # Points far from the detector's are refused.
    assert not ksame_shape.plausible(shape + [0.0, 0.4 * ksame.REF_EYES], lm)


def test_a_face_warped_onto_its_own_shape_is_unchanged(aligned):
    canvas, lm, _, shape = aligned
    warp = ksame_shape.MeanShapeWarp(shape)
    mx, my = warp.maps(shape)
    ys, xs = np.mgrid[0 : ksame.REF_SIDE, 0 : ksame.REF_SIDE]
    assert np.abs(mx - xs).max() < 1e-3 and np.abs(my - ys).max() < 1e-3
    assert np.abs(warp.carry(shape, lm) - lm).max() < 1e-6
    assert not warp.folds(shape)


def test_the_warp_moves_the_face_onto_the_mean_shape(aligned):
    canvas, lm, _, shape = aligned
    shift = np.array([3.0, 2.0])
    warp = ksame_shape.MeanShapeWarp(shape + shift)
    mx, my = warp.maps(shape)
    moved = cv2.remap(canvas, mx, my, cv2.INTER_CUBIC)
    # Inside the face (triangles of the 68 points only) the warp is the shift: pixels and landmarks move by it.
    x0, y0 = (lm[0] + 8).astype(int)
    x1, y1 = (lm[4] - 4).astype(int)
    assert np.array_equal(moved[y0:y1, x0:x1], canvas[y0 - 2 : y1 - 2, x0 - 3 : x1 - 3])
    assert np.abs(warp.carry(shape, lm) - (lm + shift)).max() < 1e-6
    # The canvas border stays where it is.
    assert abs(mx[0, 0]) < 1.0 and abs(mx[-1, -1] - (ksame.REF_SIDE - 1)) < 1.0
    # A shape that would turn a triangle over is refused, and warp_group leaves that photo as it was.
    folded = shape.copy()
    folded[ksame_shape.NOSE_TIP] = shape[8]  # the nose tip dragged below the chin
    assert warp.folds(folded)
    # warp_group: each photo onto the mean of the shapes (here halfway), one without a shape as it was.
    out, _, mean_lm, warped = ksame_shape.warp_group([canvas] * 3, [np.ones(canvas.shape[:2], np.uint8)] * 3,
                                                     [shape, shape + shift, None], [lm, lm + shift, lm])
    assert warped == 2 and np.array_equal(out[2], canvas)
    assert np.abs(mean_lm - (lm + shift / 3)).max() < 1e-6  # two at lm + shift / 2, one at lm
