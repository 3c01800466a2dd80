"""The RedactedFrame boundary: frozen pixels of its own, one factory held by the anonymizer, no way around it."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import numpy as np
import pytest

import edgeanon.frames as frames
from edgeanon.anonymize import Anonymizer
from edgeanon.detector import FaceDetector
from edgeanon.frames import Frame, RedactedFrame


@pytest.fixture(scope="module")
def redacted_pair(detector_model, face_image) -> tuple[Frame, RedactedFrame]:
    """A raw frame of the astronaut and its RedactedFrame, made the real way (detector + blur)."""
    faces = FaceDetector.from_path(detector_model).detect(face_image)
    assert faces
    raw = Frame(3, 0.3, face_image.copy())
    return raw, Anonymizer("blur").redact(raw, faces)


def test_pixels_are_frozen_and_shared_with_nobody(redacted_pair):
    raw, red = redacted_pair
    assert not np.shares_memory(red.image, raw.image)
    assert np.array_equal(red.image, raw.image)  # the redaction happened in place, then was copied
    with pytest.raises(ValueError):
        red.image[0, 0] = 0
    with pytest.raises(ValueError):
        red.image.flags.writeable = True  # an immutable buffer underneath: cannot be switched back
    before = red.image.copy()
    raw.image[...] = 255  # the source keeps writing its buffer (the next camera frame)
    assert np.array_equal(red.image, before)


def test_fields_cannot_be_swapped(redacted_pair, face_image):
    _, red = redacted_pair
    for name, value in (("image", face_image), ("faces", ()), ("fully_masked", True), ("other", 1)):
        with pytest.raises(AttributeError):
            setattr(red, name, value)
    with pytest.raises(AttributeError):
        del red.image


def test_replace_copy_and_pickle_are_refused(redacted_pair, face_image):
    _, red = redacted_pair
    with pytest.raises(TypeError):
        dataclasses.replace(red, image=face_image)
    for attempt in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="cannot be"):
            attempt(red)


def test_constructor_refuses_every_caller(face_image):
    with pytest.raises(TypeError, match="only be made by the anonymizer"):
        RedactedFrame(0, 0.0, face_image)
    with pytest.raises(TypeError, match="only be made by the anonymizer"):
        RedactedFrame(index=0, timestamp=0.0, image=face_image, faces=(), fully_masked=False)


def test_no_importable_factory_besides_the_anonymizer(face_image):
    with pytest.raises(ImportError):
        from edgeanon.frames import _make_redacted  # noqa: F401 - the old public-in-all-but-name factory
    factories = [name for name, value in vars(frames).items()
                 if callable(value) and name not in ("RedactedFrame", "Frame", "Detection", "FaceRecord",
                                                      "BoxSize", "dataclass", "Callable", "_claim_factory")]
    assert factories == [], factories
    with pytest.raises(RuntimeError, match="belongs to edgeanon.anonymize"):
        frames._claim_factory()  # the anonymizer claimed it when it was imported


def test_mask_all_makes_a_frozen_fully_masked_frame(face_image):
    raw = Frame(0, 0.0, face_image.copy())
    red = Anonymizer("fill").mask_all(raw)
    assert red.fully_masked and red.faces == () and not red.image.flags.writeable
    assert int(red.image.max()) == 0 and not np.shares_memory(red.image, raw.image)
