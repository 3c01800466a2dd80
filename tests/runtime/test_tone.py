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


def _cheeks_and_nose(bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Median CIELAB of every pixel (no skin test) in small discs on both cheeks and the nose, drawn here by hand."""
    lm = np.asarray(landmarks, np.float64)
    span = float(np.hypot(*(lm[1] - lm[0])))
    mask = np.zeros(bgr.shape[:2], np.uint8)
    for x, y in ((lm[0] + lm[3]) / 2, (lm[1] + lm[4]) / 2, (lm[2] * 2 + (lm[0] + lm[1]) / 2) / 3):
        cv2.circle(mask, (int(round(x)), int(round(y))), max(1, int(0.15 * span)), 1, -1)
    return np.median(tone.lab_of(bgr)[mask > 0], axis=0)


def _loose(box: np.ndarray, scale: float) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * scale / 2, (y2 - y1) * scale / 2
    return np.array([cx - w, cy - h, cx + w, cy + h], np.float32)


def test_a_loose_box_on_a_skin_coloured_backdrop_gives_the_face_its_own_tone(face_image, faces):
    box, landmarks = faces[0].box, faces[0].landmarks
    own = tone.target(face_image, box, "face", 1.6, landmarks=landmarks)
    # A salmon-pink backdrop (a magazine cover; it passes any colour test for skin) right up to her face, and a box
    # twice her face's size, as a detector gives for a face it is unsure of.
    backdrop = face_image.copy()
    backdrop[tone._radius(face_image.shape[:2], box, 1.0) >= 0.95] = (120, 140, 230)
    loose = _loose(box, 2.0)
    found = tone.target(backdrop, loose, "face", 1.6, landmarks=landmarks)
    assert np.allclose(found, own, atol=1.0)
    assert np.allclose(found, _cheeks_and_nose(face_image, landmarks), atol=3.0)
    # The box's rule reads the backdrop: the face would come out pink.
    assert tone.target(backdrop, loose, "box", 1.6)[1] > own[1] + 15


def test_dark_skin_and_its_shading_count_as_skin(face_image, faces):
    box, landmarks = faces[0].box, faces[0].landmarks
    for light in (0.45, 0.3, 0.2):  # her face at L* about 37, 25 and 16: dark skin, its shading included
        dark = (face_image * light).astype(np.uint8)
        found = tone.target(dark, box, "face", 1.6, landmarks=landmarks)
        assert abs(found[0] - _cheeks_and_nose(dark, landmarks)[0]) < 2.0, light


def test_without_usable_landmarks_the_face_source_reads_the_box(face_image, faces):
    box = faces[0].box
    by_box = tone.target(face_image, box, "box", 1.6)
    assert np.array_equal(tone.target(face_image, box, "face", 1.6), by_box)
    for bad in (np.full((5, 2), np.nan), np.zeros((5, 2)), np.zeros((3, 2))):
        assert np.array_equal(tone.target(face_image, box, "face", 1.6, landmarks=bad), by_box)


def test_a_face_at_the_frame_edge_still_gets_a_tone(face_image, faces):
    box, landmarks = faces[0].box, faces[0].landmarks
    x1 = int(box[0] + (box[2] - box[0]) * 0.45)  # the frame starts at her nose: one cheek is cut off
    cut = np.ascontiguousarray(face_image[:, x1:])
    shift = np.array([x1, 0], np.float32)
    found = tone.target(cut, box - np.tile(shift, 2), "face", 1.6, landmarks=landmarks - shift)
    assert found is not None and abs(found[0] - tone.target(face_image, box, "face", 1.6, landmarks=landmarks)[0]) < 5


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


def test_shift_measures_the_generated_face_where_the_tone_was_read(face_image, faces):
    region = crops.crop_region(faces[0].box)
    crop = crops.cut_crop(face_image, region).astype(np.float32)
    box, landmarks = region.box_to_crop(faces[0].box), region.to_crop(faces[0].landmarks)
    goal = np.array([30.0, 15.0, 20.0], np.float32)
    out = tone.shift(crop, box, goal, crops.MASK_SCALE, landmarks=landmarks)
    assert np.allclose(tone.target(out, box, "face", 1.6, landmarks=landmarks), goal, atol=2.0)


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
