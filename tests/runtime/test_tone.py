"""A generated face's tone: read from the face's own skin or the skin around its mask, given as one CIELAB offset."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgeanon.anonymize import crops, tone
from edgeanon.anonymize.gan import FaceGenerator


def _lightness(bgr: np.ndarray, box: np.ndarray) -> float:
    """Median L* inside the box's ellipse shrunk to tone.FACE_RADIUS."""
    r = tone._radius(bgr.shape[:2], box, 1.0)
    lab = cv2.cvtColor(bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)
    return float(np.median(lab[..., 0][r < tone.FACE_RADIUS]))


def test_the_face_source_reads_the_faces_own_skin_and_follows_its_light(face_image, faces):
    box = faces[0].box
    bright = tone.target(face_image, box, "face", 1.6)
    dark = tone.target((face_image * 0.45).astype(np.uint8), box, "face", 1.6)
    assert bright is not None and dark is not None
    assert 55 < bright[0] < 90 and bright[1] > 0  # light, reddish skin
    assert dark[0] < bright[0] - 20


def test_the_surround_source_needs_visible_skin_around_the_mask(face_image, faces):
    box = faces[0].box
    # Around her mask: hair, the grey backdrop and the black suit; no skin to read.
    assert tone.target(face_image, box, "surround", 1.6) is None
    # Her own cheek's pixels tiled around the mask (skin that stays visible): that is what it reads.
    x1, y1, x2, y2 = (int(v) for v in box)
    cheek = face_image[y1 + (y2 - y1) // 2 : y1 + (y2 - y1) // 2 + 12, x1 + 10 : x1 + 22]
    skin = np.tile(cheek, (face_image.shape[0] // 12 + 1, face_image.shape[1] // 12 + 1, 1))
    skin = np.ascontiguousarray(skin[: face_image.shape[0], : face_image.shape[1]])
    found = tone.target(skin, box, "surround", 1.6)
    expected = tone.median_lab(cheek, np.ones(cheek.shape[:2], bool))
    assert found is not None and np.allclose(found, expected, atol=4)


def test_shift_moves_the_face_to_the_tone_and_leaves_the_context(face_image, faces):
    region = crops.crop_region(faces[0].box)
    crop = crops.cut_crop(face_image, region).astype(np.float32)
    box = region.box_to_crop(faces[0].box)
    goal = np.array([30.0, 15.0, 20.0], np.float32)  # a dark, warm skin tone
    out = tone.shift(crop, box, goal, crops.MASK_SCALE)
    assert _lightness(out, box) == pytest.approx(30.0, abs=2.0)
    outside = tone._radius(crop.shape[:2], box, crops.MASK_SCALE) >= 1.0
    assert np.allclose(out[outside], crop[outside], atol=0.5)


def test_a_face_given_the_tone_of_a_darker_person_comes_out_darker(face_image, faces, generator):
    dark_scene = (face_image * 0.45).astype(np.uint8)
    as_generated, toned = dark_scene.copy(), dark_scene.copy()
    FaceGenerator(generator.backend, tone_source=None).replace(as_generated, faces, [3])
    with_tone = FaceGenerator(generator.backend, tone_source="face")
    assert with_tone.replace(toned, faces, [3]) == [True]
    box = faces[0].box
    assert _lightness(toned, box) < _lightness(as_generated, box) - 3
    assert abs(_lightness(toned, box) - _lightness(dark_scene, box)) < abs(
        _lightness(as_generated, box) - _lightness(dark_scene, box))


def test_an_unknown_tone_source_is_refused(generator):
    with pytest.raises(ValueError, match="tone source"):
        FaceGenerator(generator.backend, tone_source="neck")
