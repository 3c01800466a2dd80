"""The evaluations' people: every evaluated face is a person of its own, stable across runs (as a track on camera)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeanon.anonymize import Anonymizer
from edgeanon.anonymize.gan import DEFAULT_GENERATOR, FaceGenerator
from edgeanon.detector import FaceDetector
from edgeanon.frames import Detection, Frame
from export.eval.methods import as_people


@pytest.fixture(scope="module")
def faces(face_image, detector_model) -> list[Detection]:
    found = FaceDetector.from_path(detector_model).detect(face_image)
    assert found and found[0].landmarks is not None
    return found[:1]


@pytest.fixture(scope="module")
def generator() -> FaceGenerator:
    return FaceGenerator.from_path(DEFAULT_GENERATOR, backend="ort")


def test_evaluations_give_every_face_its_own_stable_person(face_image, faces, generator):
    anon = Anonymizer("gan", generator=generator)
    outs = []
    for key in ("a.jpg", "b.jpg", "a.jpg"):
        image = face_image.copy()
        red = anon.redact(Frame(0, 0.0, image), as_people(faces, key))
        assert [r.method for r in red.faces] == ["gan"]
        outs.append(image)
    assert np.array_equal(outs[0], outs[2]), "the same file must give the same synthetic face"
    assert not np.array_equal(outs[0], outs[1]), "two people must not share one latent"
    two = as_people(faces * 2, "a.jpg")
    assert two[0].track_id != two[1].track_id
    assert np.array_equal(two[0].box, faces[0].box) and np.array_equal(two[0].landmarks, faces[0].landmarks)
